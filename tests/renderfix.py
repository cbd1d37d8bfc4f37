"""Results and schemas that the renderer tests share."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from ocrvault.model import Document, EngineInfo, Line, Page, Word

SCHEMAS = Path(__file__).parent / "schemas"


def rect(left: float, top: float, right: float, bottom: float) -> list[float]:
    return [left, top, right, top, right, bottom, left, bottom]


def word(text: str, left: float, top: float, width: float, height: float = 40,
         confidence: float = 0.9) -> Word:
    return Word(text=text, polygon=rect(left, top, left + width, top + height),
                confidence=confidence)


def line_of(*words: Word) -> Line:
    xs = [v for w in words for v in w.polygon[0::2]]
    ys = [v for w in words for v in w.polygon[1::2]]
    return Line(text=" ".join(w.text for w in words),
                polygon=rect(min(xs), min(ys), max(xs), max(ys)),
                confidence=min(w.confidence for w in words), words=list(words))


def sample_document() -> Document:
    """Two pages; the first with two paragraphs, odd characters and a low-confidence word."""
    first = Page(number=1, width=1700, height=1000, angle=0, engine="tesseract", lines=[
        line_of(word("Invoice", 100, 100, 200), word("<4711>", 320, 100, 180)),
        line_of(word("Total:", 100, 160, 150), word("99\u00a0€", 270, 160, 120,
                                                              confidence=0.31)),
        line_of(word("Fax\x0c&", 100, 600, 200)),
    ])
    second = Page(number=3, width=800, height=600, angle=0, engine="tesseract", lines=[])
    return Document.from_pages([first, second], EngineInfo(name="tesseract", version="5.3"),
                               ["eng", "deu"])


class _LocalSchemas(etree.Resolver):
    """Resolve the ALTO schema's xlink import to the copy under tests/schemas."""

    def resolve(self, url: str, pubid: str | None, context: object) -> object:
        if url and url.endswith("xlink.xsd"):
            return self.resolve_filename(str(SCHEMAS / "xlink.xsd"), context)
        return None


def alto_schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_LocalSchemas())
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "alto-4-4.xsd"), parser))


def parse_xml(data: bytes) -> etree._Element:
    """Parse as XML, fetching nothing (the hOCR DOCTYPE names a DTD on the web)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.fromstring(data, parser)

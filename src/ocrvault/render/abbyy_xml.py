"""ABBYY FineReader XML (FineReader10-schema-v1), what the ABBYY Cloud OCR SDK returns for
``exportFormat=xml``: the result for code written against ABBYY's own output.

``document`` > ``page width height resolution`` > ``block blockType="Text"`` (with its
``region``) > ``text`` > ``par`` > ``line baseline l t r b`` > ``formatting lang`` >
``charParams l t r b wordStart charConfidence``, one per character, in page pixels.
ocrvault reads words, not characters, so each word's box is shared evenly among its
characters, and the space between two words is a ``charParams`` of the gap, as ABBYY
writes it. Blocks are split as ALTO's are (markup.blocks).
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from ocrvault import __version__
from ocrvault.model import Document, Line, OutputFormat, Page
from ocrvault.render.base import DocumentRenderer
from ocrvault.render.markup import Box, blocks, box_of, union, xml_text

NAMESPACE = "http://www.abbyy.com/FineReader_xml/FineReader10-schema-v1.xml"
# An image's resolution is not kept (its metadata is dropped), so ABBYY's default is given.
IMAGE_RESOLUTION = 300
POINTS_PER_INCH = 72

# ABBYY's language names, as its requests and its XML spell them, and the Tesseract code
# each reads as (api/compat/languages.py maps requests with it).
ABBYY_LANGUAGES = {
    "English": "eng", "German": "deu", "French": "fra", "Spanish": "spa", "Italian": "ita",
    "Dutch": "nld", "Portuguese": "por", "Russian": "rus", "Polish": "pol", "Czech": "ces",
    "Danish": "dan", "Finnish": "fin", "Swedish": "swe", "Norwegian": "nor",
    "Hungarian": "hun", "Turkish": "tur", "Greek": "ell", "Ukrainian": "ukr",
    "ChinesePRC": "chi_sim", "ChineseTaiwan": "chi_tra", "Japanese": "jpn", "Korean": "kor",
}
_NAME_OF = {code: name for name, code in reversed(ABBYY_LANGUAGES.items())}


def _ltrb(box: Box) -> str:
    left, top, right, bottom = box
    return f'l="{left}" t="{top}" r="{right}" b="{bottom}"'


def _char(text: str, box: Box, word_start: bool, confidence: int) -> str:
    return (f'<charParams {_ltrb(box)} wordStart="{str(word_start).lower()}" '
            f'charConfidence="{confidence}">{escape(text)}</charParams>')


def _word_chars(text: str, box: Box, confidence: float) -> list[str]:
    """One ``charParams`` per character, the word's box cut into equal slices."""
    left, top, right, bottom = box
    width = right - left
    edges = [left + width * i // len(text) for i in range(len(text) + 1)]
    percent = round(confidence * 100)
    return [_char(char, (edges[i], top, max(edges[i + 1], edges[i]), bottom), i == 0, percent)
            for i, char in enumerate(text)]


def _line(line: Line, lang: str) -> list[str]:
    words = [(xml_text(w.text).strip(), box_of(w.polygon), w.confidence) for w in line.words]
    words = [word for word in words if word[0]]
    if not words:
        return []
    box = union([word[1] for word in words])
    chars: list[str] = []
    for number, (text, word_box, confidence) in enumerate(words):
        if number:  # the space, over the gap since the word before
            gap_left = min(words[number - 1][1][2], word_box[0])
            chars.append(_char(" ", (gap_left, box[1], word_box[0], box[3]), False, 100))
        chars.extend(_word_chars(text, word_box, confidence))
    return [f'<line baseline="{box[3]}" {_ltrb(box)}><formatting lang={quoteattr(lang)}>',
            *chars, "</formatting></line>"]


def _resolution(page: Page) -> int:
    if page.size_pt is None:
        return IMAGE_RESOLUTION
    return max(1, round(page.width * POINTS_PER_INCH / page.size_pt[0]))


def _page(page: Page, lang: str) -> list[str]:
    out = [f'<page width="{page.width}" height="{page.height}" '
           f'resolution="{_resolution(page)}" originalCoords="1">']
    for block in blocks(page.lines):
        rows = [row for line in block for row in _line(line, lang)]
        if rows:
            box = _ltrb(union([box_of(line.polygon) for line in block]))
            out.extend([f'<block blockType="Text" {box}><region><rect {box}/></region>',
                        "<text>", "<par>", *rows, "</par>", "</text>", "</block>"])
    out.append("</page>")
    return out


def render_abbyy_xml(document: Document) -> bytes:
    names = [_NAME_OF.get(code, code) for code in document.languages]
    lang = names[0] if names else "English"
    head = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<document xmlns="{NAMESPACE}" version="1.0" '
            f'producer={quoteattr(f"ocrvault {__version__}")} '
            f'pagesCount="{len(document.pages)}" mainLanguage={quoteattr(lang)} '
            f'languages={quoteattr(",".join(names))} '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="{NAMESPACE} {NAMESPACE}">\n')
    rows = [row for page in document.pages for row in _page(page, lang)]
    return (head + "".join(f"{row}\n" for row in rows) + "</document>\n").encode("utf-8")


RENDERER = DocumentRenderer(OutputFormat.ABBYY_XML, render_abbyy_xml)

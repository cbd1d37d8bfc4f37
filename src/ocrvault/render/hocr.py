"""hOCR 1.2 (http://kba.github.io/hocr-spec/1.2/): the result as XHTML.

``ocr_page`` > ``ocr_line`` > ``ocrx_word``, each with its ``bbox`` in page pixels and
each word with ``x_wconf`` (0-100). A page's ``image`` property is left out on purpose:
it would name the uploaded file, and nothing of the input's name is kept.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from ocrvault import __version__
from ocrvault.model import Document, Line, OutputFormat, Page
from ocrvault.render.base import DocumentRenderer
from ocrvault.render.markup import Box, box_of, xml_text

_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="{lang}" lang="{lang}">
 <head>
  <title>OCR result</title>
  <meta http-equiv="Content-Type" content="text/html; charset=utf-8"/>
  <meta name="ocr-system" content={system}/>
  <meta name="ocr-capabilities" content="ocr_page ocr_line ocrx_word ocrp_wconf"/>
  <meta name="ocr-langs" content={langs}/>
  <meta name="ocr-number-of-pages" content="{pages}"/>
 </head>
 <body>
"""
_TAIL = " </body>\n</html>\n"


def _bbox(box: Box) -> str:
    return "bbox {} {} {} {}".format(*box)


def _line(page: Page, index: int, line: Line) -> list[str]:
    words = [word for word in line.words if xml_text(word.text).strip()]
    if not words:
        return []
    line_id = f"line_{page.number}_{index}"
    out = [f'   <span class="ocr_line" id="{line_id}" title="{_bbox(box_of(line.polygon))}">']
    for number, word in enumerate(words, start=1):
        title = f"{_bbox(box_of(word.polygon))}; x_wconf {round(word.confidence * 100)}"
        out.append(f'    <span class="ocrx_word" id="word_{page.number}_{index}_{number}" '
                   f'title="{title}">{escape(xml_text(word.text))}</span>')
    out.append("   </span>")
    return out


def render_hocr(document: Document) -> bytes:
    system = f"ocrvault {__version__} ({document.engine.name} {document.engine.version})"
    parts = [_HEAD.format(lang=_xml_lang(document.languages), system=quoteattr(system),
                          langs=quoteattr(" ".join(document.languages)),
                          pages=len(document.pages))]
    for ppageno, page in enumerate(document.pages):
        title = f"bbox 0 0 {page.width} {page.height}; ppageno {ppageno}"
        parts.append(f'  <div class="ocr_page" id="page_{page.number}" title="{title}">\n')
        for index, line in enumerate(page.lines, start=1):
            parts.extend(f"{row}\n" for row in _line(page, index, line))
        parts.append("  </div>\n")
    parts.append(_TAIL)
    return "".join(parts).encode("utf-8")


# ISO 639-2 (Tesseract's codes) to the two-letter tags xml:lang prefers, for the common ones.
_TWO_LETTER = {"eng": "en", "deu": "de", "fra": "fr", "spa": "es", "ita": "it", "nld": "nl",
               "por": "pt", "pol": "pl", "ces": "cs", "swe": "sv", "dan": "da", "fin": "fi"}


def _xml_lang(languages: list[str]) -> str:
    first = languages[0].split("_")[0] if languages else "und"
    return _TWO_LETTER.get(first, first)


RENDERER = DocumentRenderer(OutputFormat.HOCR, render_hocr)

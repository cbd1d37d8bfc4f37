"""Born-digital PDF pages read from their own text layer, without OCR; runs in the sandbox.

pdfium's text page gives each character with its box; characters are grouped into words
at whitespace and into lines where pdfium starts a new one, and the boxes are mapped to
the pixels the page would be rendered to for OCR, so an extracted page and an OCR'd page
share one coordinate system. Confidence is 1.0: the text is what the PDF says.

When a page's text layer is trusted (``pdf_text=auto``), as a rule:

* it has text: at least one character that is not whitespace;
* the text is visible: at most half of it is in render mode 3 (invisible) or 7 (clip
  only). An invisible layer is some other tool's OCR, of unknown quality (often over a
  poor scan, sometimes deliberately misleading); the page is OCR'd again, as
  OCRmyPDF's ``--redo-ocr`` does;
* the text is real: at most 10% of its characters lack a Unicode mapping (pdfium's
  unicode map error), are U+FFFD, controls or private-use code points (fonts subset
  without a ToUnicode map read as such junk);
* the page is no scan: no single image covers half the page or more. A scan with a few
  stamped or typed words (a date stamp, a Bates number) has text, visible and real, but
  the page's content is the image.

Every other page is OCR'd. ``pdf_text=extract`` reads any page with text (visible or
not), dropping junk characters; ``pdf_text=ocr`` never reads the layer.

Residual risks: text drawn as vector outlines has no characters and is OCR'd; a layer
that maps glyphs to wrong but ordinary letters (a font with a lying ToUnicode map) is
indistinguishable from real text and is trusted; text hidden under an image or outside
the crop box is read as if visible.
"""

from __future__ import annotations

import ctypes
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import pypdfium2 as pdfium

from ocrvault.errors import ErrorCode, ProcessingError
from ocrvault.ingest.inspect import PdfRendering, covering_image
from ocrvault.ingest.types import ExtractedPage, PdfText
from ocrvault.model import Line, Page, PageSource, Word

_MAX_INVISIBLE_SHARE = 0.5
_MAX_JUNK_SHARE = 0.1
_HIDDEN_MODES = frozenset({pdfium.raw.FPDF_TEXTRENDERMODE_INVISIBLE,
                           pdfium.raw.FPDF_TEXTRENDERMODE_CLIP})
_LINE_BREAKS = frozenset("\r\n\u2028\u2029")

Box = tuple[float, float, float, float]  # left, top, right, bottom in page pixels


@dataclass(frozen=True, slots=True)
class TextWord:
    text: str
    box: Box


@dataclass(frozen=True, slots=True)
class PageText:
    """A page read from its text layer: the shape it has on leaving the sandbox."""

    number: int
    size: tuple[int, int]  # pixels, as the page would be rendered for OCR
    lines: tuple[tuple[TextWord, ...], ...]
    metadata_removed: frozenset[str]

    def to_page(self) -> ExtractedPage:
        """The result's page, its shape checked in the parent (the child is not trusted)."""
        try:
            lines = [_line(words) for words in self.lines if words]
            width, height = self.size
            page = Page(number=self.number, width=width, height=height, angle=0.0,
                        source=PageSource.EXTRACTED, lines=lines)
            return ExtractedPage(page, set(self.metadata_removed))
        except (ValueError, TypeError, AttributeError):
            raise ProcessingError(ErrorCode.PROCESSING_FAILED,
                                  "The decoder returned a malformed page.") from None


def _rect(box: Box) -> list[float]:
    left, top, right, bottom = box
    return [left, top, right, top, right, bottom, left, bottom]


def _line(words: tuple[TextWord, ...]) -> Line:
    built = [Word(text=w.text, polygon=_rect(w.box), confidence=1.0) for w in words]
    box = (min(w.box[0] for w in words), min(w.box[1] for w in words),
           max(w.box[2] for w in words), max(w.box[3] for w in words))
    return Line(text=" ".join(w.text for w in words), polygon=_rect(box), confidence=1.0,
                words=built)


@dataclass(slots=True)
class _Char:
    text: str
    box: Box | None  # None for characters pdfium generated (spaces, line breaks)
    hidden: bool
    junk: bool


def read_text_layer(pdf: pdfium.PdfDocument, number: int, rendering: PdfRendering,
                    mode: PdfText, metadata_removed: frozenset[str]) -> PageText | None:
    """Page ``number``'s text if ``mode`` and the rule above say to use it, else None."""
    if mode is PdfText.OCR:
        return None
    page = pdf[number - 1]
    try:
        chars = _chars(page, rendering.size)
        if not _usable(chars, page, mode):
            return None
        keep = [c for c in chars if not c.junk and (mode is PdfText.EXTRACT or not c.hidden)]
        return PageText(number, rendering.size, _group(keep), metadata_removed)
    finally:
        page.close()


def _chars(page: pdfium.PdfPage, size: tuple[int, int]) -> list[_Char]:
    text_page = page.get_textpage()
    try:
        raw, handle = pdfium.raw, text_page.raw
        to_pixels = _page_to_pixels(page, size)
        # Render mode per text object, looked up once; on a page where no text object is
        # hidden (most born-digital pages) not at all per character.
        any_hidden = _has_hidden_text(page)
        hidden_objects: dict[int, bool] = {}
        left, right, bottom, top = (ctypes.c_double() for _ in range(4))
        chars = []
        for index in range(raw.FPDFText_CountChars(handle)):
            code = raw.FPDFText_GetUnicode(handle, index)
            text = chr(code) if 0 < code < 0x110000 else "\ufffd"
            if text.isspace():  # pdfium's generated spaces and line breaks among them
                chars.append(_Char(text, None, hidden=False, junk=False))
                continue
            hidden = False
            if any_hidden:
                text_object = raw.FPDFText_GetTextObject(handle, index)
                address = ctypes.cast(text_object, ctypes.c_void_p).value or 0
                if address not in hidden_objects:
                    hidden_objects[address] = bool(address) and (
                        raw.FPDFTextObj_GetTextRenderMode(text_object) in _HIDDEN_MODES)
                hidden = hidden_objects[address]
            junk = raw.FPDFText_HasUnicodeMapError(handle, index) == 1 or _is_junk(text)
            box = None
            if raw.FPDFText_GetCharBox(handle, index, left, right, bottom, top):
                box = to_pixels(left.value, bottom.value, right.value, top.value)
            chars.append(_Char(text, box, hidden, junk))
        return chars
    finally:
        text_page.close()


def _has_hidden_text(page: pdfium.PdfPage) -> bool:
    """Whether any text object of the page (in form XObjects too) is drawn invisible."""
    texts = page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_TEXT], max_depth=8)
    return any(pdfium.raw.FPDFTextObj_GetTextRenderMode(text.raw) in _HIDDEN_MODES
               for text in texts)


def _is_junk(text: str) -> bool:
    return text == "\ufffd" or unicodedata.category(text) in ("Cc", "Co", "Cs", "Cn")


def _page_to_pixels(page: pdfium.PdfPage, size: tuple[int, int]
                    ) -> Callable[[float, float, float, float], Box]:
    """A box in page space to the pixels of the page rendered at ``size``, as pdfium maps
    it (crop box, /Rotate): an affine map, found once from three points far apart (pdfium
    rounds to whole pixels, so their distance keeps the error far under one)."""
    def device(x: float, y: float) -> tuple[int, int]:
        device_x, device_y = ctypes.c_int(), ctypes.c_int()
        pdfium.raw.FPDF_PageToDevice(page.raw, 0, 0, size[0], size[1], 0, x, y,
                                     device_x, device_y)
        return device_x.value, device_y.value

    reach = 10_000.0
    (ox, oy), (ax, ay), (bx, by) = device(0, 0), device(reach, 0), device(0, reach)
    xx, xy, yx, yy = (ax - ox) / reach, (ay - oy) / reach, (bx - ox) / reach, (by - oy) / reach
    width, height = size

    def to_pixels(left: float, bottom: float, right: float, top: float) -> Box:
        # Opposite corners map to opposite corners under a rotation by quarter turns.
        x1, x2 = ox + xx * left + yx * bottom, ox + xx * right + yx * top
        y1, y2 = oy + xy * left + yy * bottom, oy + xy * right + yy * top
        x1, x2 = (x1, x2) if x1 <= x2 else (x2, x1)
        y1, y2 = (y1, y2) if y1 <= y2 else (y2, y1)
        return max(x1, 0.0), max(y1, 0.0), min(x2, width), min(y2, height)

    return to_pixels


def _usable(chars: list[_Char], page: pdfium.PdfPage, mode: PdfText) -> bool:
    text = [c for c in chars if c.box is not None]
    if not text:
        return False
    if mode is PdfText.EXTRACT:
        return any(not c.junk for c in text)
    if sum(c.hidden for c in text) > _MAX_INVISIBLE_SHARE * len(text):
        return False
    if sum(c.junk for c in text) > _MAX_JUNK_SHARE * len(text):
        return False
    width, height = page.get_size()
    return covering_image(page, width * height) is None


def _group(chars: list[_Char]) -> tuple[tuple[TextWord, ...], ...]:
    """Words at whitespace, lines at pdfium's line breaks."""
    lines: list[tuple[TextWord, ...]] = []
    line: list[TextWord] = []
    word: list[_Char] = []

    def end_word() -> None:
        boxes = [c.box for c in word if c.box is not None]
        if boxes:
            line.append(TextWord("".join(c.text for c in word),
                                 (min(b[0] for b in boxes), min(b[1] for b in boxes),
                                  max(b[2] for b in boxes), max(b[3] for b in boxes))))
        word.clear()

    for char in chars:
        if char.text in _LINE_BREAKS:
            end_word()
            if line:
                lines.append(tuple(line))
                line = []
        elif char.text.isspace():
            end_word()
        else:
            word.append(char)
    end_word()
    if line:
        lines.append(tuple(line))
    return tuple(lines)

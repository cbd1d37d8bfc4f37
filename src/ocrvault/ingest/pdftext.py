"""Born-digital PDF pages read from their own text layer, without OCR; runs in the sandbox.

pdfium's text page gives the page's characters; they are grouped into words at
whitespace and into lines where pdfium starts a new one, each word boxed by pdfium's
rectangles over its characters, and the boxes are mapped to the pixels the page would
be rendered to for OCR, so an extracted page and an OCR'd page
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
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import pypdfium2 as pdfium

from ocrvault.errors import ErrorCode, ProcessingError
from ocrvault.ingest.inspect import PdfRendering, page_objects
from ocrvault.ingest.types import ExtractedPage, PdfText

_MAX_INVISIBLE_SHARE = 0.5
_MAX_JUNK_SHARE = 0.1
_HIDDEN_MODES = frozenset({pdfium.raw.FPDF_TEXTRENDERMODE_INVISIBLE,
                           pdfium.raw.FPDF_TEXTRENDERMODE_CLIP})
_LINE_BREAKS = frozenset("\r\n\u2028\u2029")

Box = tuple[float, float, float, float]  # left, top, right, bottom in page pixels


class TextWord(NamedTuple):
    # A tuple, not a dataclass: pages of hundreds of words cross the pipe from the child,
    # and a tuple unpickles without a per-object __setstate__.
    text: str
    box: Box


@dataclass(frozen=True, slots=True)
class PageText:
    """A page read from its text layer: the shape it has on leaving the sandbox."""

    number: int
    size: tuple[int, int]  # pixels, as the page would be rendered for OCR
    lines: tuple[tuple[TextWord, ...], ...]
    metadata_removed: frozenset[str]
    size_pt: tuple[float, float] | None = None  # the page in points, which ``size`` covers

    def to_page(self) -> ExtractedPage:
        """The result's page, its shape checked in the parent (the child is not trusted)."""
        # Here, in the parent: a decode child never loads the models (see sandbox.py).
        from ocrvault.model import Page, PageSource

        try:
            if not plausible_points(self.size_pt):
                raise ValueError("size_pt")
            width, height = self.size
            # One validation of the whole page: pydantic checks nested dicts in native code,
            # where building each word's model was most of the cost of an extracted page.
            page = Page.model_validate({
                "number": self.number, "width": width, "height": height, "angle": 0.0,
                "size_pt": self.size_pt, "source": PageSource.EXTRACTED,
                "lines": [_line(words) for words in self.lines if words]})
            return ExtractedPage(page, set(self.metadata_removed))
        except (ValueError, TypeError, AttributeError):
            raise ProcessingError(ErrorCode.PROCESSING_FAILED,
                                  "The decoder returned a malformed page.") from None


def plausible_points(size: object) -> bool:
    """Whether a page size the decode child reports can be believed (None: an image)."""
    return size is None or (isinstance(size, tuple) and len(size) == 2 and all(
        isinstance(side, float) and 0.0 < side < math.inf for side in size))


def _rect(box: Box) -> list[float]:
    left, top, right, bottom = box
    return [left, top, right, top, right, bottom, left, bottom]


def _line(words: tuple[TextWord, ...]) -> dict[str, Any]:
    box = (min(w.box[0] for w in words), min(w.box[1] for w in words),
           max(w.box[2] for w in words), max(w.box[3] for w in words))
    return {"text": " ".join(w.text for w in words), "polygon": _rect(box), "confidence": 1.0,
            "words": [{"text": w.text, "polygon": _rect(w.box), "confidence": 1.0}
                      for w in words]}


@dataclass(frozen=True, slots=True)
class _Layer:
    """A page's text layer as pdfium reads it, one character per pdfium index."""

    text: str
    glyphs: int  # characters that are not whitespace
    junk: frozenset[int]  # indices of characters without a real Unicode meaning
    hidden: frozenset[int]  # indices of characters drawn invisible

    def usable(self, mode: PdfText) -> bool:
        if mode is PdfText.EXTRACT:
            return len(self.junk) < self.glyphs
        return (self.glyphs > 0
                and len(self.hidden) <= _MAX_INVISIBLE_SHARE * self.glyphs
                and len(self.junk) <= _MAX_JUNK_SHARE * self.glyphs)


def _unchecked(function: Any, restype: type) -> Any:
    """``function`` of pypdfium2's raw bindings called without ctypes' conversion of each
    argument (pointers and ints pass as they are; doubles must go by ``byref``): a page
    asks pdfium about each of its thousand characters, and the conversion was most of
    each call's cost."""
    address = ctypes.cast(function, ctypes.c_void_p).value
    assert address, "pdfium's library lacks a function its bindings name"
    return ctypes.CFUNCTYPE(restype)(address)


_HAS_MAP_ERROR = _unchecked(pdfium.raw.FPDFText_HasUnicodeMapError, ctypes.c_int)
_GET_UNICODE = _unchecked(pdfium.raw.FPDFText_GetUnicode, ctypes.c_uint)
_COUNT_RECTS = _unchecked(pdfium.raw.FPDFText_CountRects, ctypes.c_int)
_GET_RECT = _unchecked(pdfium.raw.FPDFText_GetRect, ctypes.c_int)
_WORD_OR_BREAK = re.compile(r"[\r\n\u2028\u2029]|\S+")
_SURROGATE_PAIR = re.compile(r"[\ud800-\udbff][\udc00-\udfff]")


def read_text_layer(pdf: pdfium.PdfDocument, number: int, rendering: PdfRendering,
                    mode: PdfText, metadata_removed: frozenset[str]) -> PageText | None:
    """Page ``number``'s text if ``mode`` and the rule above say to use it, else None."""
    if mode is PdfText.OCR:
        return None
    page = pdf[number - 1]
    try:
        # A scan, whatever words are stamped on it; a rendering that did not look for its
        # image (inspection's) is taken for one, so that nothing unchecked is trusted.
        if mode is PdfText.AUTO and rendering.scan is not False:
            return None
        text_page = page.get_textpage()
        try:
            layer = _read_layer(page, text_page)
            if not layer.usable(mode):
                return None
            dropped = layer.junk if mode is PdfText.EXTRACT else layer.junk | layer.hidden
            lines = _lines(text_page, layer.text, dropped,
                           _page_to_pixels(page, rendering.size))
        finally:
            text_page.close()
        return PageText(number, rendering.size, lines, metadata_removed, rendering.points)
    finally:
        page.close()


def _read_layer(page: pdfium.PdfPage, text_page: pdfium.PdfTextPage) -> _Layer:
    handle = text_page.raw
    count = pdfium.raw.FPDFText_CountChars(handle)
    text = _indexed_text(text_page, count)
    glyphs = [index for index, char in enumerate(text) if not char.isspace()]
    junk = {index for index in glyphs if _HAS_MAP_ERROR(handle, index) == 1}
    paired = set() if text.isascii() else {
        index for pair in _SURROGATE_PAIR.finditer(text) for index in range(*pair.span())}
    junk.update(index for index in glyphs if not " " <= text[index] <= "~"
                and index not in paired and _is_junk(text[index]))
    hidden = _hidden(handle, glyphs) if _has_hidden_text(page) else set()
    return _Layer(text, len(glyphs), frozenset(junk), frozenset(hidden))


def _indexed_text(text_page: pdfium.PdfTextPage, count: int) -> str:
    """The page's text, one character per pdfium index. pdfium indexes a character beyond
    U+FFFF as its two UTF-16 halves, so the text keeps them apart (:func:`_joined` puts a
    word's pairs back together)."""
    text: str = text_page.get_text_range(errors="surrogatepass")
    if len(text) != count and not text.isascii():
        halves = text.encode("utf-16-le", "surrogatepass")
        text = "".join(map(chr, memoryview(halves).cast("H")))
    if len(text) != count:  # characters pdfium's text leaves out: asked one by one
        text = "".join(_character(_GET_UNICODE(text_page.raw, index)) for index in range(count))
    return text


def _joined(text: str) -> str:
    """``text`` with UTF-16 halves of a pair joined, and a half without its pair replaced."""
    if text.isascii():
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _character(code: int) -> str:
    return chr(code) if 0 < code < 0x110000 else "\ufffd"


def _hidden(handle: Any, glyphs: list[int]) -> set[int]:
    """The glyphs drawn in an invisible render mode, the mode looked up once per text
    object."""
    raw = pdfium.raw
    hidden_objects: dict[int, bool] = {}
    hidden = set()
    for index in glyphs:
        text_object = raw.FPDFText_GetTextObject(handle, index)
        address = ctypes.cast(text_object, ctypes.c_void_p).value or 0
        if address not in hidden_objects:
            hidden_objects[address] = bool(address) and (
                raw.FPDFTextObj_GetTextRenderMode(text_object) in _HIDDEN_MODES)
        if hidden_objects[address]:
            hidden.add(index)
    return hidden


def _has_hidden_text(page: pdfium.PdfPage) -> bool:
    """Whether any text object of the page (in form XObjects too) is drawn invisible."""
    texts = page_objects(page, pdfium.raw.FPDF_PAGEOBJ_TEXT, max_depth=8)
    return any(pdfium.raw.FPDFTextObj_GetTextRenderMode(text) in _HIDDEN_MODES
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


def _lines(text_page: pdfium.PdfTextPage, text: str, dropped: frozenset[int],
           to_pixels: Callable[[float, float, float, float], Box]
           ) -> tuple[tuple[TextWord, ...], ...]:
    """Words at whitespace, lines at pdfium's line breaks, ``dropped`` characters left
    out; a word's box is the union of pdfium's rectangles over its characters (one per
    run of characters in one text object), so it costs a call per word, not per
    character."""
    handle = text_page.raw
    left, top, right, bottom = (ctypes.c_double() for _ in range(4))
    corners = [ctypes.byref(side) for side in (left, top, right, bottom)]
    lines: list[tuple[TextWord, ...]] = []
    line: list[TextWord] = []
    for token in _WORD_OR_BREAK.finditer(text):
        start, end = token.span()
        if text[start] in _LINE_BREAKS:
            if line:
                lines.append(tuple(line))
                line = []
            continue
        runs = _runs(start, end, dropped)
        x0 = y0 = math.inf
        x1 = y1 = -math.inf
        for run_start, run_end in runs:
            for index in range(_COUNT_RECTS(handle, run_start, run_end - run_start)):
                _GET_RECT(handle, index, *corners)
                x0, y0 = min(x0, left.value), min(y0, bottom.value)
                x1, y1 = max(x1, right.value), max(y1, top.value)
        if x0 <= x1:  # a word whose characters have no extent has no box, and is left out
            word = text[start:end] if len(runs) == 1 else "".join(text[a:b] for a, b in runs)
            line.append(TextWord(_joined(word), to_pixels(x0, y0, x1, y1)))
    if line:
        lines.append(tuple(line))
    return tuple(lines)


def _runs(start: int, end: int, dropped: frozenset[int]) -> list[tuple[int, int]]:
    """The runs of ``range(start, end)`` that leave out the ``dropped`` indices."""
    if dropped.isdisjoint(range(start, end)):
        return [(start, end)]
    runs: list[tuple[int, int]] = []
    for index in range(start, end):
        if index in dropped:
            continue
        if runs and runs[-1][1] == index:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    return runs

"""Full decode of the selected pages to plain pixels; runs inside the sandbox child.

Every page leaves as :class:`PagePixels`: a mode (``L`` or ``RGB``), a size and raw
bytes, nothing else. Metadata (EXIF with GPS, XMP, IPTC, ICC profiles, comments, PNG
text chunks, the PDF info dictionary, attachments) therefore cannot cross to the parent
by construction: there is no field to carry it. What was present is reported by name
in ``metadata_removed``, so a caller can tell its users what was dropped.

EXIF orientation is applied before the metadata goes, so the pixels stand upright.
Alpha is composited on white (text on a transparent background stays readable), and
high-bit-depth grey is scaled so that the brightest sample is white.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import pypdfium2 as pdfium
from PIL import ExifTags, Image, ImageOps

from ocrvault.errors import ErrorCode, InputRejected, ProcessingError
from ocrvault.ingest.inspect import (
    PdfRendering,
    check_page_size,
    load_pdf,
    open_image,
    open_pdf,
    pdf_page_rendering,
)
from ocrvault.ingest.pdftext import PageText, plausible_points, read_text_layer
from ocrvault.ingest.sandbox import held_memo
from ocrvault.ingest.types import DecodedPage, FileFormat, Limits, PdfText

# Modes whose pixels are grey levels; everything else becomes RGB.
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})

# TIFF carries its structure in tags, so only these tags count as metadata there.
_TIFF_METADATA_TAGS = frozenset(
    {
        ExifTags.Base.ImageDescription,
        ExifTags.Base.Make,
        ExifTags.Base.Model,
        ExifTags.Base.Software,
        ExifTags.Base.DateTime,
        ExifTags.Base.Artist,
        ExifTags.Base.HostComputer,
        ExifTags.Base.Copyright,
        ExifTags.Base.ExifOffset,
    }
)
_TIFF_IPTC_TAG = 33723
_PNG_XMP_KEY = "XML:com.adobe.xmp"


@dataclass(frozen=True, slots=True)
class PagePixels:
    """A decoded page as plain pixels: the only shape a page has on leaving the sandbox."""

    number: int
    mode: str
    size: tuple[int, int]
    pixels: bytes
    metadata_removed: frozenset[str]
    size_pt: tuple[float, float] | None = None  # a PDF page's size in points; None: an image

    def to_page(self) -> DecodedPage:
        """Rebuild the image in the parent, checking the shape the child claims."""
        width, height = self.size
        if self.mode not in ("L", "RGB") or not plausible_points(self.size_pt) or len(
            self.pixels) != width * height * Image.getmodebands(self.mode):
            raise ProcessingError(
                ErrorCode.PROCESSING_FAILED, "The decoder returned a malformed page."
            )
        image = Image.frombytes(self.mode, self.size, self.pixels)
        return DecodedPage(self.number, image, set(self.metadata_removed), self.size_pt)


def decode_pages(
    data: bytes,
    fmt: FileFormat,
    pages: list[int],
    limits: Limits,
    pdf_password: str | None = None,
    pdf_text: PdfText = PdfText.OCR,
    grey: bool = False,
) -> Iterator[PagePixels | PageText]:
    """Decode ``pages`` (1-based) of ``data`` one at a time, sizes re-checked before each.

    A PDF page whose text layer ``pdf_text`` lets through (ingest/pdftext.py) comes as its
    text instead of its pixels. With ``grey`` (an engine that reads grey levels only) every
    page leaves as 8-bit grey: a third of the bytes of colour to copy across the pipe and
    to hold, and the conversion done here, beside the worker, not in it."""
    if fmt is FileFormat.PDF:
        yield from _pdf_pages(data, pages, limits, pdf_password, pdf_text, grey)
    else:
        yield from _image_pages(data, fmt, pages, limits, grey)


def decode_page(
    data: bytes,
    fmt: FileFormat,
    number: int,
    limits: Limits,
    pdf_password: str | None = None,
    pdf_text: PdfText = PdfText.OCR,
    grey: bool = False,
) -> PagePixels | PageText:
    """Decode page ``number`` (1-based) alone: a page task of a job read page by page."""
    return next(decode_pages(data, fmt, [number], limits, pdf_password, pdf_text, grey))


def _image_pages(
    data: bytes, fmt: FileFormat, pages: list[int], limits: Limits, grey: bool
) -> Iterator[PagePixels]:
    with open_image(data, fmt, limits) as image:
        for number in pages:
            _seek_page(image, number)
            check_page_size(image.size, limits, f"Page {number}")
            image.load()
            removed = _image_metadata(image)
            page = _to_grey_or_rgb(ImageOps.exif_transpose(image))
            if grey and page.mode != "L":
                page = page.convert("L")
            yield PagePixels(number, page.mode, page.size, page.tobytes(), removed)


def _pdf_pages(
    data: bytes, pages: list[int], limits: Limits, password: str | None, pdf_text: PdfText,
    grey: bool,
) -> Iterator[PagePixels | PageText]:
    with _pdf_of(data, password) as pdf:
        removed = _pdf_metadata(pdf)
        for number in pages:
            if not 1 <= number <= len(pdf):
                raise _no_such_page(number)
            rendering = pdf_page_rendering(pdf, number, limits)
            text = _read_text(pdf, number, rendering, pdf_text, removed)
            if text is not None:
                yield text
                continue
            image, attached = _render(pdf, number, rendering.scale, grey)
            yield PagePixels(number, image.mode, image.size, image.tobytes(),
                             removed | attached, rendering.points)


@contextmanager
def _pdf_of(data: bytes, password: str | None) -> Iterator[pdfium.PdfDocument]:
    """``data`` opened; in a child that keeps the document (a job read page by page),
    opened once for all its pages: pdfium finds page N by walking the page tree from the
    first page, so a PDF opened afresh for each page costs time quadratic in its pages."""
    memo = held_memo()
    if memo is None:
        with open_pdf(data, password) as pdf:
            yield pdf
        return
    key = ("pdf", password)
    if key not in memo:
        memo[key] = load_pdf(data, password)
    yield memo[key]


def _render(pdf: pdfium.PdfDocument, number: int, scale: float,
            grey: bool) -> tuple[Image.Image, frozenset[str]]:
    """Rasterise one page, and name the metadata its annotations carry; forms are never
    drawn (they were never initialised)."""
    try:
        page = pdf[number - 1]
        try:
            bitmap = page.render(scale=scale, may_draw_forms=False, rev_byteorder=True,
                                 grayscale=grey)
            image: Image.Image = bitmap.to_pil()
            return image, _annotation_metadata(page)
        finally:
            page.close()
    except pdfium.PdfiumError:
        raise InputRejected(
            ErrorCode.CORRUPT_FILE,
            f"Page {number} of the PDF cannot be rendered. Re-save the PDF and send it again.",
        ) from None


def _read_text(pdf: pdfium.PdfDocument, number: int, rendering: PdfRendering,
               pdf_text: PdfText, removed: frozenset[str]) -> PageText | None:
    try:
        page = pdf[number - 1]
        try:
            attached = _annotation_metadata(page)
        finally:
            page.close()
        return read_text_layer(pdf, number, rendering, pdf_text, removed | attached)
    except pdfium.PdfiumError:
        return None  # a text layer pdfium cannot read: the page is rendered and OCR'd


def _annotation_metadata(page: pdfium.PdfPage) -> frozenset[str]:
    """``attachments`` when a FileAttachment annotation embeds a file in the page: pdfium's
    attachment count sees only the document's EmbeddedFiles name tree."""
    for index in range(pdfium.raw.FPDFPage_GetAnnotCount(page.raw)):
        annotation = pdfium.raw.FPDFPage_GetAnnot(page.raw, index)
        if not annotation:
            continue
        try:
            if pdfium.raw.FPDFAnnot_GetSubtype(annotation) == pdfium.raw.FPDF_ANNOT_FILEATTACHMENT:
                return frozenset({"attachments"})
        finally:
            pdfium.raw.FPDFPage_CloseAnnot(annotation)
    return frozenset()


def _seek_page(image: Image.Image, number: int) -> None:
    if number < 1 or (number > 1 and image.format != "TIFF"):
        raise _no_such_page(number)
    try:
        image.seek(number - 1)
    except EOFError:
        raise _no_such_page(number) from None


def _no_such_page(number: int) -> InputRejected:
    return InputRejected(ErrorCode.INVALID_PARAMETER, f"pages: page {number} does not exist.")


def _image_metadata(image: Image.Image) -> frozenset[str]:
    """Names of the metadata kinds this page carries (all of which are dropped)."""
    info = image.info
    exif = image.getexif()
    tiff = image.format == "TIFF"
    text = getattr(image, "text", {})  # PNG text chunks, read to the end by load()
    present = {
        "exif": "exif" in info or (tiff and not _TIFF_METADATA_TAGS.isdisjoint(exif)),
        "gps": bool(exif.get_ifd(ExifTags.IFD.GPSInfo)),
        "xmp": "xmp" in info,
        "iptc": "photoshop" in info or (tiff and _TIFF_IPTC_TAG in exif),
        "icc_profile": "icc_profile" in info,
        "comment": "comment" in info,
        "text": any(key != _PNG_XMP_KEY for key in text),
    }
    return frozenset(kind for kind, found in present.items() if found)


def _pdf_metadata(pdf: pdfium.PdfDocument) -> frozenset[str]:
    present = {
        "pdf_info": bool(pdf.get_metadata_dict(skip_empty=True)),
        "attachments": pdf.count_attachments() > 0,
    }
    return frozenset(kind for kind, found in present.items() if found)


def _to_grey_or_rgb(image: Image.Image) -> Image.Image:
    grey = image.mode in _GREY_MODES
    if image.mode.startswith("I") or image.mode == "F":
        image = _scale_to_8_bits(image)
    target = "L" if grey else "RGB"
    if image.has_transparency_data:
        with_alpha = image.convert("LA" if grey else "RGBA")
        page = Image.new(target, image.size, "white")
        page.paste(with_alpha.convert(target), mask=with_alpha.getchannel("A"))
        return page
    return image if image.mode == target else image.convert(target)


def _scale_to_8_bits(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit or float grey so the brightest sample is white (convert() would clip)."""
    wide = image if image.mode == "F" else image.convert("I")
    _, brightest = cast(tuple[float, float], wide.getextrema())  # one band: (min, max)
    scale = 255 / brightest if brightest > 0 else 1.0
    return wide.point(lambda value: value * scale).convert("L")

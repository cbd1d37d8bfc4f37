"""Header-level limits: refuse a file from what it declares, before any pixel is decoded.

Images are opened with Pillow's lazy ``Image.open``, which parses the header only, and
only with the plugin of the sniffed format (Pillow never guesses among its other
parsers). Pillow's decompression-bomb guard is set to our pixel limit and its warning
is an error, so "a bit over the limit" is refused rather than logged.

PDFs are opened with pypdfium2, and forms are never initialised: pdfium then has no
form environment, so no JavaScript, ``/OpenAction``, ``/Launch`` or XFA is ever
executed, and pdfium itself fetches nothing.

A PDF page is judged by the pixels it renders to, before a bitmap is allocated for it.
Each page is rendered at ``pdf_dpi``, except a page that one image covers for the most
part (a scan, a photo, an "images to PDF" file): that page is rendered at the image's
own resolution (at least 72 dpi, at most ``pdf_dpi``), so its pixels map 1:1 instead
of being upscaled to blur. A receipt of 1080 x 1527 px placed on a 15 x 21 in page at
72 dpi renders to 1080 x 1527 px, where 300 dpi would make 4500 x 6363 px of it.

These functions parse hostile bytes with native code: production runs them in the
decode sandbox (``ingest.sandbox``), one call at a time, which is also why setting
Pillow's process-wide pixel limit here is safe.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import pypdfium2 as pdfium
from PIL import Image

from ocrvault.errors import ErrorCode, InputRejected, OcrVaultError
from ocrvault.ingest.structure import bmp_size, tiff_page_count
from ocrvault.ingest.types import FileFormat, InputInfo, Limits

POINTS_PER_INCH = 72
MIN_PDF_DPI = 72
# An image covering at least this share of its page sets the page's render resolution.
_COVERING_SHARE = 0.5
# Images looked at per page (with one level of form XObjects): a page of many tiny images
# is no scan, and looking must stay cheap whatever the page holds.
_IMAGES_LOOKED_AT = 64


def inspect_header(
    data: bytes, fmt: FileFormat, limits: Limits, pdf_password: str | None = None
) -> InputInfo:
    """Check bytes, pages and page sizes of ``data`` against ``limits``.

    Every page's size is checked, not only selected ones: the selection is parsed
    against the page count this returns. Decoding checks the selected pages again.
    """
    check_file_size(data, limits)
    if fmt is FileFormat.PDF:
        with open_pdf(data, pdf_password) as pdf:
            page_count = _pdf_page_count(pdf, limits)
    else:
        with open_image(data, fmt, limits) as image:
            page_count = _image_page_count(image, limits)
    return InputInfo(format=fmt, page_count=page_count, size_bytes=len(data))


def check_file_size(data: bytes, limits: Limits) -> None:
    if len(data) > limits.max_file_bytes:
        raise InputRejected(
            ErrorCode.FILE_TOO_LARGE,
            f"The file is {len(data):,} bytes; the limit is {limits.max_file_bytes:,} bytes. "
            "Split it or compress it.",
        )


def check_page_size(size: tuple[int, int], limits: Limits, what: str) -> None:
    """Refuse a page whose declared size breaks the side or pixel limit."""
    width, height = size
    if width < 1 or height < 1:
        raise InputRejected(ErrorCode.CORRUPT_FILE, f"{what} declares an empty size.")
    if max(width, height) > limits.max_side_px or width * height > limits.max_page_pixels:
        raise InputRejected(
            ErrorCode.IMAGE_TOO_LARGE,
            f"{what} is {width} x {height} px; the limits are {limits.max_side_px:,} px per "
            f"side and {limits.max_page_pixels:,} px per page. Scale it down.",
        )


def check_structure(data: bytes, fmt: FileFormat, limits: Limits) -> None:
    """Refuse a damaged header (``corrupt_file``) or too many TIFF pages before Pillow parses
    the file: a looping IFD chain or a negative BMP width is damage, not a size."""
    if fmt is FileFormat.TIFF:
        _check_page_count(tiff_page_count(data, limits.max_pages), limits)
    elif fmt is FileFormat.BMP:
        check_page_size(bmp_size(data), limits, "The BMP image")


@contextmanager
def open_image(data: bytes, fmt: FileFormat, limits: Limits) -> Iterator[Image.Image]:
    """Open ``data`` with Pillow's plugin for ``fmt``; Pillow errors become ``InputRejected``.

    The body of the ``with`` block (seek, load, convert) is covered too: Pillow raises a
    zoo of exception types on damaged data, and every one of them means a corrupt file.
    Headers Pillow misreads are checked first (:func:`check_structure`).
    """
    saved_limit = Image.MAX_IMAGE_PIXELS
    try:
        check_structure(data, fmt, limits)
        with warnings.catch_warnings():
            # Pillow warns about damaged metadata it then skips; that is no reason to refuse.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = limits.max_page_pixels
            with Image.open(io.BytesIO(data), formats=[fmt.name]) as image:
                yield image
    except (OcrVaultError, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputRejected(
            ErrorCode.IMAGE_TOO_LARGE,
            f"The image declares more than {limits.max_page_pixels:,} px. Scale it down.",
        ) from None
    except Exception:
        raise InputRejected(
            ErrorCode.CORRUPT_FILE,
            f"The {fmt.name} file is damaged or truncated. "
            "Check that it opens in an image viewer, or re-save it.",
        ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit


def load_pdf(data: bytes, password: str | None) -> pdfium.PdfDocument:
    """A PDF opened with pdfium (never with forms); encrypted and unreadable ones refused.
    The caller closes it (see :func:`open_pdf`)."""
    try:
        return pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError as exc:
        raise _pdf_open_error(exc.err_code, password) from None


@contextmanager
def open_pdf(data: bytes, password: str | None) -> Iterator[pdfium.PdfDocument]:
    """:func:`load_pdf`, closed at the end of the block."""
    pdf = load_pdf(data, password)
    try:
        yield pdf
    finally:
        pdf.close()


@dataclass(frozen=True, slots=True)
class PdfRendering:
    """How a PDF page is rasterised: ``scale`` pixels per point, to ``size`` pixels, from
    a page of ``points`` (1/72 in; rounding up can add a pixel to ``size``)."""

    scale: float
    size: tuple[int, int]
    points: tuple[float, float]
    # Whether one image covers most of the page (a scan, a photo); None where it was not
    # looked for (inspection, of a page that fits at ``pdf_dpi``).
    scan: bool | None = None

    @property
    def dpi(self) -> float:
        return self.scale * POINTS_PER_INCH


def pdf_page_rendering(pdf: pdfium.PdfDocument, number: int, limits: Limits, *,
                       exact: bool = True) -> PdfRendering:
    """The rendering of page ``number`` (1-based), its size checked against the limits.

    Without ``exact``, a page that fits at ``pdf_dpi`` is not loaded to find its images:
    it fits at any lower resolution too, which is all that inspection needs to know.
    """
    width_pt, height_pt = _page_box(pdf, number)
    full = limits.pdf_dpi / POINTS_PER_INCH
    scale, scan = full, None
    if exact or not _fits(_pixels(width_pt, height_pt, full), limits):
        image_scale = _image_scale(pdf, number, width_pt * height_pt)
        scale, scan = image_scale or full, image_scale is not None
        scale = min(max(scale, MIN_PDF_DPI / POINTS_PER_INCH), full)
    rendering = PdfRendering(scale, _pixels(width_pt, height_pt, scale), (width_pt, height_pt),
                             scan)
    check_page_size(rendering.size, limits,
                    f"Page {number} of the PDF at {rendering.dpi:.0f} dpi")
    return rendering


def _page_box(pdf: pdfium.PdfDocument, number: int) -> tuple[float, float]:
    try:
        width_pt, height_pt = pdf.get_page_size(number - 1)
    except pdfium.PdfiumError:
        raise InputRejected(
            ErrorCode.CORRUPT_FILE,
            f"Page {number} of the PDF cannot be read (its page tree is damaged). "
            "Re-save the PDF and send it again.",
        ) from None
    return width_pt, height_pt


def _pixels(width_pt: float, height_pt: float, scale: float) -> tuple[int, int]:
    # The same rounding pdfium's renderer uses, so the check sees the bitmap it would make.
    return math.ceil(width_pt * scale), math.ceil(height_pt * scale)


def _fits(size: tuple[int, int], limits: Limits) -> bool:
    width, height = size
    return max(width, height) <= limits.max_side_px and width * height <= limits.max_page_pixels


def _image_scale(pdf: pdfium.PdfDocument, number: int, page_area: float) -> float | None:
    """Pixels per point of the largest image on the page, if it covers most of the page."""
    try:
        page = pdf[number - 1]
    except pdfium.PdfiumError:
        raise InputRejected(
            ErrorCode.CORRUPT_FILE,
            f"Page {number} of the PDF cannot be read. Re-save the PDF and send it again.",
        ) from None
    try:
        covering = covering_image(page, page_area)
        if covering is None:
            return None
        (width_pt, height_pt), (width_px, height_px) = covering
        # A hair under the image's own: rounding up then gives its pixels, not one more.
        return (max(width_px, height_px) - 0.001) / max(width_pt, height_pt)
    finally:
        page.close()


def covering_image(page: pdfium.PdfPage, page_area: float
                   ) -> tuple[tuple[float, float], tuple[int, int]] | None:
    """Size in points and in pixels of the largest image on ``page``, if it covers most of
    it (a scan, a photo); None otherwise, or when an image cannot be measured."""
    try:
        largest: tuple[tuple[float, float], tuple[int, int]] | None = None
        images = page_objects(page, pdfium.raw.FPDF_PAGEOBJ_IMAGE, max_depth=2)
        for _, raw_image in zip(range(_IMAGES_LOOKED_AT), images, strict=False):
            image = pdfium.PdfObject(raw_image, page=page, pdf=page.pdf)
            left, bottom, right, top = image.get_bounds()
            width_pt, height_pt = right - left, top - bottom
            width_px, height_px = image.get_px_size()
            if min(width_px, height_px) > 0 and (
                    largest is None or width_pt * height_pt > largest[0][0] * largest[0][1]):
                largest = (width_pt, height_pt), (width_px, height_px)
    except pdfium.PdfiumError:
        return None  # an image that cannot be measured sets nothing: the page's dpi stays
    if largest is None or largest[0][0] * largest[0][1] < _COVERING_SHARE * page_area:
        return None
    return largest


def page_objects(page: pdfium.PdfPage, kind: int, max_depth: int) -> Iterator[Any]:
    """The raw handles of the page's objects of ``kind`` (``FPDF_PAGEOBJ_*``), in form
    XObjects too, ``max_depth`` levels down. pypdfium2's ``get_objects`` wraps every object
    of every kind in a Python object first, which on a page of a thousand text runs cost
    more than reading its text."""
    raw = pdfium.raw

    def walk(count: int, get: Callable[[int], Any], depth: int) -> Iterator[Any]:
        for index in range(count):
            handle = get(index)
            if not handle:
                raise pdfium.PdfiumError("Failed to get pageobject.")
            found = raw.FPDFPageObj_GetType(handle)
            if found == kind:
                yield handle
            if found == raw.FPDF_PAGEOBJ_FORM and depth + 1 < max_depth:
                yield from walk(raw.FPDFFormObj_CountObjects(handle),
                                partial(raw.FPDFFormObj_GetObject, handle), depth + 1)

    return walk(raw.FPDFPage_CountObjects(page.raw), partial(raw.FPDFPage_GetObject, page.raw),
                0)


def _pdf_page_count(pdf: pdfium.PdfDocument, limits: Limits) -> int:
    page_count = len(pdf)
    _check_page_count(page_count, limits)
    for number in range(1, page_count + 1):
        pdf_page_rendering(pdf, number, limits, exact=False)
    return page_count


def _image_page_count(image: Image.Image, limits: Limits) -> int:
    """Count frames by walking TIFF IFDs (a loop was refused before), checking each size."""
    page_count = 0
    while True:
        page_count += 1
        _check_page_count(page_count, limits)
        check_page_size(image.size, limits, f"Page {page_count}")
        if image.format != "TIFF":
            return page_count  # other formats' extra frames (animation, MPO) are not pages
        try:
            image.seek(page_count)
        except EOFError:
            return page_count


def _check_page_count(page_count: int, limits: Limits) -> None:
    if page_count > limits.max_pages:
        raise InputRejected(
            ErrorCode.TOO_MANY_PAGES,
            f"The document has more than {limits.max_pages:,} pages, the limit. "
            "Split it into smaller documents.",
        )


def _pdf_open_error(err_code: int | None, password: str | None) -> InputRejected:
    if err_code == pdfium.raw.FPDF_ERR_PASSWORD:
        detail = (
            "The PDF is encrypted. Send its password as pdf_password."
            if password is None
            else "The PDF is encrypted and pdf_password does not open it. Check the password."
        )
        return InputRejected(ErrorCode.ENCRYPTED_PDF, detail)
    if err_code == pdfium.raw.FPDF_ERR_SECURITY:
        return InputRejected(
            ErrorCode.ENCRYPTED_PDF,
            "The PDF uses an encryption scheme ocrvault cannot open. Save an unencrypted copy.",
        )
    return InputRejected(
        ErrorCode.CORRUPT_FILE,
        "The PDF is damaged or truncated and cannot be opened. "
        "Check that it opens in a PDF viewer, or re-save it.",
    )

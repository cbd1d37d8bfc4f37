"""Header-level limits: a file is refused from what it declares, before a full decode."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import replace

import pikepdf
import pytest
from PIL import Image

from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.ingest import FileFormat, InputInfo, Limits
from ocrvault.ingest.inspect import inspect_header
from ocrvault.ingest.structure import tiff_page_count
from tests import hostilegen
from tests.docgen import encode, pdf_of

LIMITS = Limits(
    max_file_bytes=10_000_000, max_pages=5, max_page_pixels=4_000_000, max_side_px=3000, pdf_dpi=150
)
SMALL = Image.new("L", (20, 20), "white")


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` grey pixels; the data is 1 KiB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(1024)))
        + chunk(b"IEND", b"")
    )


def tiff_of(count: int) -> bytes:
    frames = [Image.new("L", (4, 4), shade) for shade in range(count)]
    return encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])


def encrypted(pdf: bytes, user_password: str) -> bytes:
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf)) as document:
        document.save(out, encryption=pikepdf.Encryption(owner="owner-pw", user=user_password))
    return out.getvalue()


def rejection(
    data: bytes, fmt: FileFormat, limits: Limits = LIMITS, password: str | None = None
) -> InputRejected:
    with pytest.raises(InputRejected) as rejected:
        inspect_header(data, fmt, limits, password)
    return rejected.value


def test_a_file_within_limits_reports_format_pages_and_size() -> None:
    data = tiff_of(3)
    assert inspect_header(data, FileFormat.TIFF, LIMITS) == InputInfo(
        format=FileFormat.TIFF, page_count=3, size_bytes=len(data)
    )


def test_a_file_over_the_byte_limit_is_too_large() -> None:
    data = encode(SMALL, "PNG")
    limits = Limits(
        max_file_bytes=len(data) - 1, max_pages=1, max_page_pixels=10**6, max_side_px=1000
    )
    assert rejection(data, FileFormat.PNG, limits).code is ErrorCode.FILE_TOO_LARGE


def test_a_png_declaring_100000_by_100000_px_is_refused_from_its_header() -> None:
    error = rejection(png_declaring(100_000, 100_000), FileFormat.PNG)
    assert error.code is ErrorCode.IMAGE_TOO_LARGE


def test_a_side_over_the_limit_is_refused_even_when_the_pixel_count_is_fine() -> None:
    error = rejection(png_declaring(3001, 10), FileFormat.PNG)
    assert error.code is ErrorCode.IMAGE_TOO_LARGE
    assert "3001 x 10 px" in error.detail


def test_pillows_decompression_bomb_warning_is_a_refusal_not_a_warning() -> None:
    data = png_declaring(2500, 2000)  # 5 Mpx: over our 4 Mpx, under Pillow's 2x hard error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # prove the refusal does not rely on pytest's filter
        error = rejection(data, FileFormat.PNG)
    assert error.code is ErrorCode.IMAGE_TOO_LARGE


def test_a_tiff_with_more_pages_than_the_limit_is_refused() -> None:
    assert rejection(tiff_of(6), FileFormat.TIFF).code is ErrorCode.TOO_MANY_PAGES


def test_a_pdf_with_more_pages_than_the_limit_is_refused() -> None:
    error = rejection(pdf_of([SMALL] * 6), FileFormat.PDF)
    assert error.code is ErrorCode.TOO_MANY_PAGES


def test_a_200_inch_pdf_page_is_refused_by_the_pixels_it_renders_to() -> None:
    error = rejection(hostilegen.pdf_page_inches(200), FileFormat.PDF)
    assert error.code is ErrorCode.IMAGE_TOO_LARGE
    assert "at 150 dpi is 30001 x 30001 px" in error.detail


def test_a_pdf_page_is_measured_at_the_render_dpi() -> None:
    ten_inches = hostilegen.pdf_page_inches(10)
    at_150_dpi = inspect_header(ten_inches, FileFormat.PDF, LIMITS)
    assert at_150_dpi.page_count == 1
    error = rejection(ten_inches, FileFormat.PDF, replace(LIMITS, pdf_dpi=400))
    assert error.code is ErrorCode.IMAGE_TOO_LARGE
    assert "4000 x 4000 px" in error.detail


def test_a_200_dpi_scan_is_measured_at_its_image_resolution() -> None:
    """1500 x 2100 px on 7.5 x 10.5 in: 3150 px a side at 300 dpi, 2100 at its own 200."""
    scan = pdf_of([Image.new("L", (1500, 2100), "white")], dpi=200)
    assert inspect_header(scan, FileFormat.PDF, replace(LIMITS, pdf_dpi=300)).page_count == 1


def test_a_72_dpi_receipt_on_a_15_inch_page_is_measured_at_its_image_resolution() -> None:
    """At 150 dpi the page would be 2250 x 3182 px, past the 3000 px side limit; its image
    is 1080 x 1527 px, which is what it renders to."""
    receipt = pdf_of([Image.new("L", (1080, 1527), "white")], dpi=72)
    assert inspect_header(receipt, FileFormat.PDF, LIMITS).page_count == 1


def test_a_low_resolution_scan_is_measured_at_72_dpi_at_least() -> None:
    """A 10-dpi image on a 300-inch page is no page: at 72 dpi it is 21600 px a side."""
    huge = pdf_of([Image.new("L", (3000, 3000), "white")], dpi=10)
    error = rejection(huge, FileFormat.PDF)
    assert error.code is ErrorCode.IMAGE_TOO_LARGE
    assert "at 72 dpi" in error.detail


def test_an_encrypted_pdf_needs_its_password() -> None:
    data = encrypted(pdf_of([SMALL]), user_password="s3cret")
    without = rejection(data, FileFormat.PDF)
    assert without.code is ErrorCode.ENCRYPTED_PDF
    assert "pdf_password" in without.detail
    wrong = rejection(data, FileFormat.PDF, password="guess")
    assert wrong.code is ErrorCode.ENCRYPTED_PDF
    assert "does not open" in wrong.detail
    assert inspect_header(data, FileFormat.PDF, LIMITS, "s3cret").page_count == 1


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (encode(SMALL, "PNG")[:30], FileFormat.PNG),
        (encode(SMALL, "JPEG")[:3], FileFormat.JPEG),
        (encode(SMALL, "TIFF")[:12], FileFormat.TIFF),
        (encode(SMALL, "WEBP")[:16], FileFormat.WEBP),
        (pdf_of([SMALL])[:200], FileFormat.PDF),
    ],
    ids=["png", "jpeg", "tiff", "webp", "pdf"],
)
def test_an_unreadable_header_is_a_corrupt_file(data: bytes, fmt: FileFormat) -> None:
    assert rejection(data, fmt).code is ErrorCode.CORRUPT_FILE


@pytest.mark.parametrize("pages", [1, 2, 5])
def test_a_tiff_whose_chain_of_pages_loops_is_a_corrupt_file(pages: int) -> None:
    error = rejection(hostilegen.tiff_with_looping_pages(pages), FileFormat.TIFF)
    assert error.code is ErrorCode.CORRUPT_FILE
    assert "loops" in error.detail and "Re-save" in error.detail


def test_the_page_chain_walk_stops_past_the_limit_and_counts_every_page() -> None:
    assert tiff_page_count(hostilegen.tiff_of_pages(5), max_pages=5) == 5
    assert tiff_page_count(hostilegen.tiff_of_pages(10_000), max_pages=5) == 6
    assert rejection(hostilegen.tiff_of_pages(10_000), FileFormat.TIFF).code is (
        ErrorCode.TOO_MANY_PAGES)


def test_a_tiff_whose_next_page_lies_past_its_end_is_a_corrupt_file() -> None:
    data = bytearray(hostilegen.tiff_of_pages(2))
    data[-4:] = struct.pack("<I", 1 << 30)
    assert rejection(bytes(data), FileFormat.TIFF).code is ErrorCode.CORRUPT_FILE


@pytest.mark.parametrize("width", [-1, -20, -(2**31), 0])
def test_a_bmp_with_a_negative_or_zero_width_is_a_corrupt_file_not_too_large(width: int) -> None:
    error = rejection(hostilegen.bmp_with_width(width), FileFormat.BMP)
    assert error.code is ErrorCode.CORRUPT_FILE
    assert f"{width} x 20 px" in error.detail and "Scale it down" not in error.detail


def test_a_top_down_bmp_with_a_negative_height_is_read() -> None:
    data = bytearray(encode(SMALL.convert("RGB"), "BMP"))
    data[22:26] = struct.pack("<i", -20)
    assert inspect_header(bytes(data), FileFormat.BMP, LIMITS).page_count == 1


def test_a_bmp_too_wide_is_still_too_large() -> None:
    error = rejection(hostilegen.bmp_with_width(50_000), FileFormat.BMP)
    assert error.code is ErrorCode.IMAGE_TOO_LARGE

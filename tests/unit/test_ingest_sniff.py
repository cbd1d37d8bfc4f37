"""Sniffing: magic bytes decide, against an allow-list; names never do."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.ingest import FileFormat, sniff
from tests.docgen import encode, pdf_of

HOSTILE = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "hostile"
SMALL = Image.new("RGB", (8, 8), "white")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(encode(SMALL, "PNG"), FileFormat.PNG, id="png"),
        pytest.param(encode(SMALL, "JPEG"), FileFormat.JPEG, id="jpeg"),
        pytest.param(encode(SMALL, "BMP"), FileFormat.BMP, id="bmp"),
        pytest.param(encode(SMALL, "TIFF"), FileFormat.TIFF, id="tiff"),
        pytest.param(b"MM\x00*" + bytes(12), FileFormat.TIFF, id="tiff-be"),
        pytest.param(b"II+\x00" + bytes(12), FileFormat.TIFF, id="bigtiff"),
        pytest.param(b"MM\x00+" + bytes(12), FileFormat.TIFF, id="bigtiff-be"),
        pytest.param(encode(SMALL, "WEBP"), FileFormat.WEBP, id="webp"),
        pytest.param(pdf_of([SMALL]), FileFormat.PDF, id="pdf"),
        pytest.param(
            b"\r\nmail junk before the header\r\n" + pdf_of([SMALL]),
            FileFormat.PDF,
            id="pdf-after-junk",
        ),
    ],
)
def test_accepted_formats_are_known_by_their_magic_bytes(data: bytes, expected: FileFormat) -> None:
    assert sniff(data) is expected


def test_an_empty_file_is_its_own_error() -> None:
    with pytest.raises(InputRejected) as rejected:
        sniff(b"")
    assert rejected.value.code is ErrorCode.EMPTY_FILE


@pytest.mark.parametrize(
    ("data", "named"),
    [
        pytest.param(encode(SMALL, "GIF"), "GIF", id="gif"),
        pytest.param(b"PK\x03\x04" + bytes(40), "ZIP", id="zip"),
        pytest.param(b"<!DOCTYPE html><html><script>alert(1)</script>", "HTML", id="html"),
        pytest.param(b"\xef\xbb\xbf  <script>alert(1)</script>", "HTML", id="html-bom"),
        pytest.param(
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG", id="svg"
        ),
        pytest.param(b'<?xml version="1.0"?><invoice/>', "XML", id="xml"),
        pytest.param(b"push graphic-context\nviewbox 0 0 640 480\n", "MVG", id="mvg"),
        pytest.param(b"%!PS-Adobe-3.0\n", "PostScript", id="postscript"),
        pytest.param(b"\x7fELF\x02\x01\x01" + bytes(9), "executable", id="elf"),
        pytest.param(b"\x00\x00\x00\x18ftypheic" + bytes(8), "HEIC", id="heic"),
        pytest.param(b"RIFF\x24\x00\x00\x00WAVEfmt ", "RIFF", id="wav"),
        pytest.param("plain words, caf\u00e9".encode(), "text", id="text"),
    ],
)
def test_a_foreign_format_is_refused_by_name_with_the_accepted_list(
    data: bytes, named: str
) -> None:
    with pytest.raises(InputRejected) as rejected:
        sniff(data)
    assert rejected.value.code is ErrorCode.UNSUPPORTED_MEDIA_TYPE
    assert named in rejected.value.detail
    assert "PNG, JPEG, BMP, TIFF, WebP or PDF" in rejected.value.detail


def test_unrecognisable_bytes_are_refused_without_a_guess() -> None:
    with pytest.raises(InputRejected) as rejected:
        sniff(bytes(range(256)))
    assert rejected.value.code is ErrorCode.UNSUPPORTED_MEDIA_TYPE
    assert "looks like" not in rejected.value.detail


def test_bm_without_a_bitmap_header_is_not_taken_for_a_bmp() -> None:
    with pytest.raises(InputRejected) as rejected:
        sniff(b"BM is how this text file starts, and nothing more")
    assert "text" in rejected.value.detail


def test_leading_magic_wins_over_a_pdf_inside() -> None:
    png = encode(SMALL, "PNG")
    assert sniff(png + pdf_of([SMALL])) is FileFormat.PNG
    with pytest.raises(InputRejected):
        sniff(encode(SMALL, "GIF") + b"%PDF-1.7\n")


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("gen_html_named.png", "HTML"),
        ("gen_svg_xxe_named.png", "SVG"),
        ("gen_zip_named.png", "ZIP"),
        ("pat_imagetragick_mvg_named.jpg", "MVG"),
        ("pat_xss.html", "HTML"),
        ("pil_decompression_bomb.gif", "GIF"),
    ],
)
def test_disguised_files_in_the_hostile_corpus_are_refused_by_content(
    name: str, named: str
) -> None:
    with pytest.raises(InputRejected) as rejected:
        sniff((HOSTILE / name).read_bytes())
    assert rejected.value.code is ErrorCode.UNSUPPORTED_MEDIA_TYPE
    assert named in rejected.value.detail


def test_the_png_pdf_polyglot_in_the_corpus_is_a_png() -> None:
    assert sniff((HOSTILE / "gen_polyglot_png_pdf.png").read_bytes()) is FileFormat.PNG

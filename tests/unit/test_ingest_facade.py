"""The Ingestor facade: byte checks in-process, every parse in the sandbox, pages streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

import ocrvault.ingest
from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.ingest import FileFormat, Ingestor, InputInfo, Limits, Sandbox
from tests.docgen import encode, pdf_of

LIMITS = Limits(
    max_file_bytes=1_000_000, max_pages=10, max_page_pixels=4_000_000, max_side_px=3000, pdf_dpi=72
)


class RefusingSandbox(Sandbox):
    """Fails the test if anything reaches a child."""

    def __init__(self) -> None:
        super().__init__(memory_bytes=1, cpu_seconds=1, timeout_seconds=1)

    def call(self, fn: Any, *args: object) -> Any:
        raise AssertionError("the bytes reached the sandbox")


@pytest.fixture(scope="module")
def ingestor() -> Iterator[Ingestor]:
    with Sandbox(memory_bytes=2**30, cpu_seconds=20, timeout_seconds=20) as sandbox:
        yield Ingestor(LIMITS, sandbox)


def test_the_public_api_is_pinned() -> None:
    assert sorted(ocrvault.ingest.__all__) == [
        "DecodedPage",
        "ExtractedPage",
        "FileFormat",
        "Ingestor",
        "InputInfo",
        "Limits",
        "PdfText",
        "Sandbox",
        "parse_page_selection",
        "sniff",
    ]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", ErrorCode.EMPTY_FILE),
        (b"<html>hello</html>", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        (b"\x89PNG\r\n\x1a\n" + bytes(LIMITS.max_file_bytes), ErrorCode.FILE_TOO_LARGE),
    ],
    ids=["empty", "html", "too-large"],
)
def test_size_and_format_are_refused_before_any_byte_reaches_a_child(
    data: bytes, code: ErrorCode
) -> None:
    with pytest.raises(InputRejected) as rejected:
        Ingestor(LIMITS, RefusingSandbox()).inspect(data)
    assert rejected.value.code is code


def test_inspect_reports_what_the_sandboxed_header_check_found(ingestor: Ingestor) -> None:
    data = pdf_of([Image.new("L", (50, 50), "white")] * 3, dpi=72)
    assert ingestor.inspect(data) == InputInfo(FileFormat.PDF, 3, len(data))


def test_decode_streams_the_selected_pages_as_images(ingestor: Ingestor) -> None:
    data = pdf_of([Image.new("L", (50, 40), shade) for shade in (0, 128, 255)], dpi=72)
    info = ingestor.inspect(data)
    pages = ingestor.decode(data, info.format, [1, 3])
    first = next(pages)
    assert (first.number, first.image.size, first.image.mode) == (1, (50, 40), "RGB")
    assert [page.number for page in pages] == [3]


def test_an_error_raised_in_the_child_reaches_the_caller_of_decode(ingestor: Ingestor) -> None:
    data = encode(Image.new("L", (10, 10)), "PNG")
    info = ingestor.inspect(data)
    with pytest.raises(InputRejected) as rejected:
        list(ingestor.decode(data, info.format, [2]))
    assert rejected.value.code is ErrorCode.INVALID_PARAMETER


def test_warm_starts_every_child_each_having_inspected_an_image() -> None:
    with Sandbox(memory_bytes=2**30, cpu_seconds=20, timeout_seconds=20, size=2) as sandbox:
        Ingestor(LIMITS, sandbox).warm()  # raises if a child's rehearsal failed
        assert sandbox.children() == 2

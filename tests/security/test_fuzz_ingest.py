"""Mutation fuzzing of ingest: damaged valid files through sniff, sandboxed inspect and decode.

Hypothesis mutates a small valid file of each accepted format (bit flips, overwritten
bytes and integers, insertions, deletions, duplicated and truncated stretches, biased
towards the headers where the sizes and offsets live). Whatever comes out, ingest may
only succeed or raise an ``OcrVaultError`` whose code is a 4xx: never another exception,
never a 5xx, and never anything that ends the calling process. The budget is bounded
(``max_examples``); the standalone ``fuzz/atheris_ingest.py`` runs longer.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ocrvault.errors import OcrVaultError
from ocrvault.ingest import Ingestor, Limits, Sandbox, parse_page_selection
from tests import hostilegen
from tests.docgen import encode, text_page

LIMITS = Limits(max_file_bytes=10_000_000, max_pages=20, max_page_pixels=4_000_000,
                max_side_px=4000, pdf_dpi=72)
HEADER_BYTES = 64
INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff",
               b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\x00\x01\x00\x00", b"\xff\xff")


def _page() -> Image.Image:
    return text_page(["Fuzz 42"], size=(96, 40), font_px=20)


def _tiff() -> bytes:
    buf = io.BytesIO()
    _page().save(buf, "TIFF", save_all=True, append_images=[_page().convert("L")],
                 compression="tiff_deflate")
    return buf.getvalue()


SEEDS: dict[str, Callable[[], bytes]] = {
    "png": lambda: encode(_page(), "PNG"),
    "jpeg": lambda: encode(_page(), "JPEG", quality=80),
    "tiff": _tiff,
    "pdf": lambda: hostilegen.text_pdf("Fuzz 42", media_box=(200, 100)),
    "webp": lambda: encode(_page(), "WEBP", quality=80),
    "bmp": lambda: encode(_page(), "BMP"),
}


@st.composite
def mutations_of(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        in_header = draw(st.booleans())
        end = min(len(data), HEADER_BYTES) if in_header else len(data)
        at = draw(st.integers(0, max(0, end - 1)))
        match draw(st.sampled_from(["flip", "byte", "integer", "insert", "delete",
                                    "duplicate", "truncate"])):
            case "flip" if data:
                data[at] ^= 1 << draw(st.integers(0, 7))
            case "byte" if data:
                data[at] = draw(st.integers(0, 255))
            case "integer":
                value = draw(st.sampled_from(INTERESTING))
                data[at:at + len(value)] = value
            case "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=16))
            case "delete":
                del data[at:at + draw(st.integers(1, 32))]
            case "duplicate":
                size = draw(st.integers(1, 256))
                data[at:at] = data[at:at + size]
            case "truncate":
                del data[at:]
    return bytes(data)


@pytest.fixture(scope="module")
def ingestor() -> Iterator[Ingestor]:
    with Sandbox(memory_bytes=512 * 2**20, cpu_seconds=5, timeout_seconds=5.0, size=1) as box:
        yield Ingestor(LIMITS, box)


def ingest_outcome(ingestor: Ingestor, data: bytes) -> str:
    """``ok``, or the code of the OcrVaultError ingest raised; anything else propagates."""
    try:
        info = ingestor.inspect(data)
        pages = parse_page_selection(None, info.page_count)[:2]
        for page in ingestor.decode(data, info.format, pages):
            assert page.image.mode in ("L", "RGB") and not page.image.info
            page.image.close()
    except OcrVaultError as error:
        if not 400 <= error.status < 500:
            pytest.fail(f"{type(error).__name__} {error.code}: {error.detail}")
        return error.code.value
    return "ok"


@pytest.mark.parametrize("fmt", list(SEEDS))
def test_mutated_files_only_succeed_or_fail_with_a_4xx_code(
    ingestor: Ingestor, fmt: str
) -> None:
    seed = SEEDS[fmt]()
    assert ingest_outcome(ingestor, seed) == "ok", "the seed itself must be valid"
    outcomes: set[str] = set()

    @settings(max_examples=400, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=mutations_of(seed))
    def fuzz(data: bytes) -> None:
        outcomes.add(ingest_outcome(ingestor, data))

    fuzz()
    parent = os.getpid()
    assert ingest_outcome(ingestor, seed) == "ok"  # the sandbox still serves
    assert os.getpid() == parent
    # The mutations must get past the sniffer into the decoders, or this proves little.
    assert {"ok", "corrupt_file"} <= outcomes

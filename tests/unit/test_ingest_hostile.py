"""Every file of the hostile corpus through sniff, sandboxed inspect and sandboxed decode.

The expected outcome comes from the corpus manifest: an error code, or ``ok`` for a
valid file that must be processed safely. The sandbox runs with the production limits
(``Settings`` defaults), so a refusal here is the refusal a client would get.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocrvault.config import Settings
from ocrvault.errors import OcrVaultError
from ocrvault.ingest import DecodedPage, Ingestor, Limits, Sandbox, parse_page_selection

HOSTILE = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "hostile"
OK = "ok"


def manifest() -> list[tuple[str, set[str]]]:
    with (HOSTILE / "manifest.tsv").open(newline="") as rows:
        return [
            (
                row["file"],
                {
                    OK if code.startswith("200") else code
                    for code in row["expected_code"].split("|")
                },
            )
            for row in csv.DictReader(rows, delimiter="\t")
        ]


@pytest.fixture(scope="module")
def ingestor() -> Iterator[Ingestor]:
    settings = Settings()
    sandbox = Sandbox(
        memory_bytes=settings.decode_memory_bytes,
        cpu_seconds=settings.decode_cpu_seconds,
        timeout_seconds=settings.decode_timeout_seconds,
        size=2,
    )
    with sandbox:
        yield Ingestor(Limits.from_settings(settings), sandbox)


def ingest(ingestor: Ingestor, data: bytes, password: str | None = None) -> list[DecodedPage]:
    info = ingestor.inspect(data, password)
    pages = parse_page_selection(None, info.page_count)
    return list(ingestor.decode(data, info.format, pages, password))


def outcome(ingestor: Ingestor, data: bytes) -> str:
    """The error code, or ``ok`` when every page came out as clean L/RGB pixels."""
    try:
        pages = ingest(ingestor, data)
    except OcrVaultError as error:
        return error.code.value
    assert pages
    assert all(page.image.mode in {"L", "RGB"} and not page.image.info for page in pages)
    return OK


# Since issue 12 a PDF page is judged by the pixels it renders to, not its inches: the
# manifest's own behaviour column allows OCRmyPDF's 30-inch page ("or render safely within
# limits"), a 300-dpi 9000 px image that renders within the 10,000 px and 100 Mpx limits.
RENDERS_WITHIN_LIMITS = {"omp_enormous.pdf"}
CASES = [(name, codes | {OK} if name in RENDERS_WITHIN_LIMITS else codes)
         for name, codes in manifest()]


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[name for name, _ in CASES])
def test_hostile_file_gets_the_manifest_outcome(
    ingestor: Ingestor, name: str, expected: set[str]
) -> None:
    assert outcome(ingestor, (HOSTILE / name).read_bytes()) in expected


def test_the_encrypted_corpus_pdf_renders_its_text_with_the_password(ingestor: Ingestor) -> None:
    [page] = ingest(ingestor, (HOSTILE / "gen_pdf_encrypted_rc4.pdf").read_bytes(), "secret")
    darkest, _ = page.image.convert("L").getextrema()
    assert darkest < 100  # "Hello hostile world" is drawn in black on white


def test_the_gps_jpeg_loses_every_location_it_carries(ingestor: Ingestor) -> None:
    [page] = ingest(ingestor, (HOSTILE / "gen_jpeg_exif_gps.jpg").read_bytes())
    assert page.metadata_removed >= {"exif", "gps", "xmp", "comment"}

"""Coverage-guided fuzzing (atheris / libFuzzer) of what ingest decides before decoding.

Not part of the test suite: run it by hand, for minutes or hours.

Targets (``--target``):

* ``sniff``: :func:`ocrvault.ingest.sniff` on any bytes must return an accepted format or
  raise ``InputRejected`` with a 4xx code, and must agree with itself on a second call.
* ``inspect``: the header limit checks, :func:`~ocrvault.ingest.inspect.inspect_header`,
  on whatever the sniffer accepts. They run here *in process*, without the sandbox, so
  that a native crash, a hang (``-timeout``) or a runaway allocation (``-rss_limit_mb``)
  in Pillow, libtiff, libwebp or pdfium is reported by libFuzzer instead of being
  contained. Any exception other than a 4xx ``OcrVaultError`` is a finding.
* ``params``: the request parameters checked before anything is stored: page
  selections (``parse_page_selection``) and declared media types (``declared_media_type``).

Usage::

    .venv/bin/python fuzz/atheris_ingest.py --target inspect --seconds 300 [--corpus DIR]

Seeds are the hostile corpus and one small valid file of each format. Findings
(crash-*, timeout-*, oom-* files) are written to ``--artifacts``.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["ocrvault", "PIL"]):
    # The format plugins are imported here, not lazily by Image.open, so they are instrumented.
    from PIL import (
        BmpImagePlugin,  # noqa: F401
        Image,
        ImageDraw,
        JpegImagePlugin,  # noqa: F401
        PngImagePlugin,  # noqa: F401
        TiffImagePlugin,  # noqa: F401
        WebPImagePlugin,  # noqa: F401
    )

    from ocrvault.errors import OcrVaultError
    from ocrvault.ingest import FileFormat, Limits, parse_page_selection, sniff
    from ocrvault.ingest.declared import contradicts, declared_media_type
    from ocrvault.ingest.inspect import inspect_header

HOSTILE = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "hostile"
LIMITS = Limits(max_file_bytes=50_000_000, max_pages=2000, max_page_pixels=100_000_000,
                max_side_px=10_000)


def _allowed(error: OcrVaultError) -> None:
    if not 400 <= error.status < 500:
        raise AssertionError(f"{type(error).__name__} {error.code}: {error.detail}") from error


def fuzz_sniff(data: bytes) -> None:
    try:
        fmt = sniff(data)
    except OcrVaultError as error:
        _allowed(error)
        return
    assert isinstance(fmt, FileFormat) and sniff(data) is fmt


def fuzz_inspect(data: bytes) -> None:
    try:
        fmt = sniff(data)
        info = inspect_header(data, fmt, LIMITS)
    except OcrVaultError as error:
        _allowed(error)
        return
    assert 1 <= info.page_count <= LIMITS.max_pages and info.format is fmt


def fuzz_params(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    page_count = provider.ConsumeIntInRange(1, LIMITS.max_pages)
    spec = provider.ConsumeUnicodeNoSurrogates(64)
    try:
        pages = parse_page_selection(spec, page_count)
    except OcrVaultError as error:
        _allowed(error)
    else:
        assert pages == sorted(set(pages)) and all(1 <= p <= page_count for p in pages)
    header = provider.ConsumeUnicodeNoSurrogates(200)
    declared = declared_media_type(header)
    if declared is not None:
        assert declared == declared.strip().lower() and len(declared) <= 100
        assert ";" not in declared and " " not in declared
        contradicts(declared, FileFormat.PNG)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "sniff": fuzz_sniff, "inspect": fuzz_inspect, "params": fuzz_params,
}


def seed_corpus(directory: Path) -> None:
    """The hostile corpus plus one small valid file of each accepted format."""
    for path in HOSTILE.iterdir():
        if path.suffix not in (".tsv", ".md") and path.stat().st_size <= 1_100_000:
            (directory / path.name).write_bytes(path.read_bytes())
    page = Image.new("RGB", (64, 32), "white")
    ImageDraw.Draw(page).text((4, 8), "seed", fill="black")
    for fmt in ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "PDF"):
        buf = io.BytesIO()
        page.save(buf, format=fmt)
        (directory / f"seed.{fmt.lower()}").write_bytes(buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="sniff")
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--corpus", type=Path, help="a working corpus dir (default: a temp dir)")
    parser.add_argument("--artifacts", type=Path, default=Path("fuzz-artifacts"))
    args, libfuzzer_args = parser.parse_known_args()
    corpus = args.corpus or Path(tempfile.mkdtemp(prefix=f"atheris-{args.target}-"))
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        seed_corpus(corpus)
    args.artifacts.mkdir(parents=True, exist_ok=True)
    atheris.Setup([
        sys.argv[0], str(corpus), f"-max_total_time={args.seconds}", "-timeout=20",
        "-rss_limit_mb=4096", "-max_len=262144", f"-artifact_prefix={args.artifacts}/",
        "-print_final_stats=1", *libfuzzer_args,
    ], TARGETS[args.target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()

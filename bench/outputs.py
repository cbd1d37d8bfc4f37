"""Searchable PDF against OCRmyPDF, and born-digital text against OCR, in one run.

    python -m bench.outputs [--pages N] [--rounds R] [--born-pages N] [--ocr-pages N]
                            [--born-only]

1. Searchable PDF, pages per second, ocrvault's pipeline (sandboxed decode, Tesseract,
   the PDF renderer in the sandbox) against ``ocrmypdf.ocr`` (in-process, one job, the
   same Tesseract, ``--output-type pdf``, no optimisation) on the same pages: JPEG
   images (one call per page, each side) and one scanned PDF of all pages. Every round
   measures each path once, interleaved; the table shows medians and the median of each
   round's ratio. Quality: the text layer's CER against the page's own text, as
   ``pdftotext`` reads it from each output (the issue: within 1 point of OCRmyPDF's);
   size: output bytes over input bytes for the JPEGs (target at most 1.1).
2. Born-digital: a ``--born-pages`` page PDF of typeset text, read with ``pdf_text=auto``
   (every page from its text layer) against ``pdf_text=ocr`` on its first ``--ocr-pages``
   pages (OCR's pages per second do not depend on how many there are; reading all 100
   would take minutes on this machine). Target: 100x.

OCRmyPDF is a bench-only dependency (``pip install ocrmypdf``; the ``bench`` extra).
Both sides run Tesseract with OMP_THREAD_LIMIT=1, as the service does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

from ocrvault.config import Settings
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.ingest.types import PdfText
from ocrvault.jobs.params import ReadParams
from ocrvault.jobs.pipeline import OcrPipeline
from ocrvault.memory import settle_heap
from ocrvault.model import OutputFormat
from ocrvault.runtime import build_pipeline
from tests.accuracy import cer
from tests.docgen import CANARY_WORDS, encode, mixed_pdf, pdf_of, text_page


def page_lines(n: int) -> list[str]:
    words = CANARY_WORDS
    return [" ".join(words[(n * 7 + row * 5 + k) % len(words)] for k in range(6))
            for row in range(8)]


def ocrvault_pdf(pipeline: OcrPipeline, data: bytes, params: ReadParams) -> bytes:
    checked = pipeline.check(data, params)
    document = pipeline.run(data, checked, params)
    return pipeline.render(document, data, checked, params, OutputFormat.PDF)


def ocrmypdf_pdf(data: bytes, suffix: str) -> bytes:
    import ocrmypdf  # a bench-only dependency: imported where it is used

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / f"in{suffix}", Path(folder) / "out.pdf"
        source.write_bytes(data)
        ocrmypdf.ocr(source, target, language=["eng"], jobs=1, output_type="pdf",
                     optimize=0, progress_bar=False, rasterizer="pypdfium")
        return target.read_bytes()


def pdftotext(pdf: bytes) -> str:
    return subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()


def timed(run: Callable[[], list[bytes]]) -> tuple[float, list[bytes]]:
    started = time.perf_counter()
    outputs = run()
    return time.perf_counter() - started, outputs


def report_searchable(pages: int, rounds: int, seconds: dict[str, list[float]],
                      last: dict[str, list[bytes]], jpegs: list[bytes], truth_text: str) -> None:
    print(f"Searchable PDF, {pages} pages of 2480 x 1600 px, {rounds} rounds")
    print(f"{'path':24} {'pages/s':>8} {'CER':>7} {'size/input':>11}")
    for name, outputs in last.items():
        text = "\n".join(pdftotext(pdf) for pdf in outputs)
        size = (f"{sum(map(len, outputs)) / sum(map(len, jpegs)):.3f}"
                if "jpeg" in name else "-")
        pages_per_second = pages / statistics.median(seconds[name])
        print(f"{name:24} {pages_per_second:8.2f} {cer(text, truth_text):7.4f} {size:>11}")
    for kind in ("jpeg", "scanned pdf"):
        ratios = [theirs / ours for ours, theirs in zip(
            seconds[f"ocrvault {kind}"], seconds[f"ocrmypdf {kind}"], strict=True)]
        print(f"speed ratio ocrvault/ocrmypdf, {kind}: {statistics.median(ratios):.2f}x "
              "(target >= 1.5x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--born-pages", type=int, default=100)
    parser.add_argument("--ocr-pages", type=int, default=5)
    parser.add_argument("--born-only", action="store_true",
                        help="measure the born-digital part alone (no OCRmyPDF needed)")
    args = parser.parse_args()

    truths = [page_lines(n) for n in range(args.pages)]
    images = [text_page(lines, size=(2480, 1600), font_px=44) for lines in truths]
    jpegs = [encode(image, "JPEG", quality=85, dpi=(300, 300)) for image in images]
    scanned = pdf_of(images, dpi=300)
    truth_text = "\n".join(" ".join(lines) for lines in truths)

    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir))
        engine = TesseractEngine(settings.tessdata_dir)
        pipeline = build_pipeline(settings, engine)
        pipeline.ingestor.sandbox.warm()  # as a worker does at start (compose/worker.py)
        settle_heap()  # and as the service does once started (memory.py)
        params = ReadParams(outputs=(OutputFormat.PDF,))
        paths: dict[str, Callable[[], list[bytes]]] = {
            "ocrvault jpeg": lambda: [ocrvault_pdf(pipeline, j, params) for j in jpegs],
            "ocrmypdf jpeg": lambda: [ocrmypdf_pdf(j, ".jpg") for j in jpegs],
            "ocrvault scanned pdf": lambda: [ocrvault_pdf(pipeline, scanned, params)],
            "ocrmypdf scanned pdf": lambda: [ocrmypdf_pdf(scanned, ".pdf")],
        }
        seconds: dict[str, list[float]] = {name: [] for name in paths}
        last: dict[str, list[bytes]] = {}
        for _ in range(0 if args.born_only else args.rounds):
            for name, run in paths.items():
                elapsed, last[name] = timed(run)
                seconds[name].append(elapsed)

        if not args.born_only:
            report_searchable(args.pages, args.rounds, seconds, last, jpegs, truth_text)

        born = mixed_pdf([("text", page_lines(n) * 4) for n in range(args.born_pages)])
        auto = ReadParams(pdf_text=PdfText.AUTO)
        forced = ReadParams(pdf_text=PdfText.OCR, pages=f"1-{args.ocr_pages}")
        auto_s, ocr_s = [], []
        for _ in range(args.rounds):
            auto_s.append(timed(lambda: [ocrvault_pdf(pipeline, born, auto)])[0])
            ocr_s.append(timed(lambda: [ocrvault_pdf(pipeline, born, forced)])[0])
        print("born-digital rounds, s: auto " + " ".join(f"{s:.3f}" for s in auto_s)
              + ", forced OCR " + " ".join(f"{s:.2f}" for s in ocr_s))
        auto_rate = args.born_pages / statistics.median(auto_s)
        ocr_rate = args.ocr_pages / statistics.median(ocr_s)
        print(f"\nBorn-digital, {args.born_pages} pages (OCR timed on {args.ocr_pages}): "
              f"auto {auto_rate:.1f} pages/s, forced OCR {ocr_rate:.2f} pages/s, "
              f"{auto_rate / ocr_rate:.0f}x (target 100x)")
        pipeline.ingestor.sandbox.close()
        engine.close()


if __name__ == "__main__":
    main()

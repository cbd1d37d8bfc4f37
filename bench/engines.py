"""Accuracy and cost per OCR engine on the shared corpus (and the rendered two-column
page), side by side in one run: mean CER, word F1 and CPU seconds per page, per kind.

Word F1 is given twice: words split on whitespace (the issue's measure, whose receipts
target is checked at the end: the exit status is 1 when ``rapidocr`` or ``auto`` misses
it) and with punctuation apart (spacing around symbols, which the receipts' transcripts
add, does not count; misreads do).

CPU time is the process's user + system time (every thread, ONNX Runtime's included),
so the figure is fair on a machine whose cores other work shares; wall time is not.
Memory is the process's resident set before loading, after loading RapidOCR's sessions
and after reading. Run: ``python -m bench.engines`` (a few minutes; one core is enough).

Each engine's pages are put in reading order as the service does (engines/layout.py);
the rows ``... (own order)`` are the same readings in the order the engine gave them
(no OCR of their own), which is how the layout step was judged for each engine.
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

import psutil
from PIL import Image

from ocrvault.config import Settings
from ocrvault.engines import registry
from ocrvault.engines.base import RecognizeOptions
from ocrvault.engines.catalog import AUTO, RAPIDOCR, TESSERACT
from ocrvault.engines.layout import order_page
from ocrvault.model import Page
from tests.accuracy import (
    RECEIPT_MAX_CER,
    RECEIPT_MIN_WORD_F1,
    Sample,
    cer,
    corpus,
    word_f1,
    words,
)

MB = 1024 * 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Figures:
    cer: list[float] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)  # words split on whitespace (the issue's)
    f1_punct: list[float] = field(default_factory=list)  # punctuation apart
    cpu: list[float] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)  # each page's mean line confidence

    def add(self, page: Page, sample: Sample, cpu: float | None) -> None:
        self.confidence.append(statistics.fmean([line.confidence for line in page.lines] or [0]))
        self.cer.append(cer(page.text, sample.truth))
        self.f1.append(word_f1(page.text, sample.truth))
        self.f1_punct.append(word_f1(page.text, sample.truth, words))
        if cpu is not None:
            self.cpu.append(cpu)


def missed_targets(figures: dict[tuple[str, str], Figures]) -> list[str]:
    """Where ``rapidocr`` and ``auto`` miss the issue's receipts targets."""
    missed = []
    for name in (RAPIDOCR, AUTO):
        fig = figures[(name, "receipt")]
        mean_cer, f1 = statistics.fmean(fig.cer), statistics.fmean(fig.f1)
        if mean_cer > RECEIPT_MAX_CER:
            missed.append(f"{name}: receipts mean CER {mean_cer:.4f} > {RECEIPT_MAX_CER}")
        if f1 < RECEIPT_MIN_WORD_F1:
            missed.append(f"{name}: receipts word F1 {f1:.4f} < {RECEIPT_MIN_WORD_F1}")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="readings per page (CPU mean)")
    args = parser.parse_args()

    process = psutil.Process()
    rss = {"start": process.memory_info().rss}
    catalog = registry.catalog(Settings())
    samples = corpus()
    images = {s.name: Image.open(io.BytesIO(s.data)) for s in samples}
    for image in images.values():
        image.load()
    warm = RecognizeOptions(languages=("eng",))
    for name in (TESSERACT, RAPIDOCR):  # load models and sessions outside the timings
        catalog.get(name).recognize(images[samples[0].name], warm)
        rss[f"after loading {name}"] = process.memory_info().rss
    figures: dict[tuple[str, str], Figures] = defaultdict(Figures)
    for name in (TESSERACT, RAPIDOCR, AUTO):
        engine = catalog.get(name)
        for sample in samples:
            options = RecognizeOptions(languages=("eng",))
            start = cpu_seconds()
            for _ in range(args.repeat):
                page = engine.recognize(images[sample.name], options)
                ordered = order_page(page)
            cpu = (cpu_seconds() - start) / args.repeat
            figures[(name, sample.kind)].add(ordered, sample, cpu)
            if name != AUTO:
                figures[(f"{name} (own order)", sample.kind)].add(page, sample, None)
    rss["after reading"] = process.memory_info().rss
    catalog.close()

    print(f"{'engine':21} {'kind':11} {'files':>5} {'CER':>7} {'F1 (spaces)':>11} "
          f"{'F1 (punct.)':>11} {'CPU s/page':>10} {'min conf':>8}")
    for (name, kind), fig in sorted(figures.items()):
        cpu = f"{statistics.fmean(fig.cpu):10.2f}" if fig.cpu else f"{'-':>10}"
        print(f"{name:21} {kind:11} {len(fig.cer):5} {statistics.fmean(fig.cer):7.4f} "
              f"{statistics.fmean(fig.f1):11.4f} {statistics.fmean(fig.f1_punct):11.4f} {cpu} "
              f"{min(fig.confidence):8.2f}")
    print()
    for label, value in rss.items():
        print(f"RSS {label}: {value / MB:.0f} MiB")
    missed = missed_targets(figures)
    print(f"\nIssue 11's receipts targets (CER <= {RECEIPT_MAX_CER}, word F1 split on "
          f"whitespace >= {RECEIPT_MIN_WORD_F1}):", "; ".join(missed) or "met")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The alternatives issue 11 asked to measure, beside ``rapidocr`` and ``auto``: mean CER,
word F1 (whitespace and punctuation-aware) and CPU seconds per page, per kind.

- ``tesseract lines + pp-ocr``: Tesseract's layout analysis finds the text lines (no
  recognition), RapidOCR's recogniser (PP-OCRv6) reads each line's crop;
- ``ensemble``: both engines read the page; on each line of RapidOCR's that one line of
  Tesseract's overlaps (intersection over union at least ``MATCH_IOU``), the line whose
  engine is more confident is kept; unmatched lines are RapidOCR's.

A prototype for the measurement only: neither won (README, Engines). Measured 2026-11 on
the 14 receipts: Tesseract's lines + PP-OCR, CER 0.103, word F1 0.648 (whitespace) /
0.790, 3.6 CPU s (Tesseract's lines span a receipt's whole row, and a two-column page's
lines both columns: CER 0.53 there); the ensemble, CER 0.032, F1 0.881 / 0.930, 2.4 CPU s
(over the 2-second budget for +0.001 F1 over ``rapidocr``: 0.032, 0.880 / 0.929). The
prototype reads a transparent page's layout on black, so it finds no line in the
grey-and-alpha text-line sample.
CPU time is the process's user + system time. Run: ``python -m bench.alternatives``
(``--kinds receipt`` for the receipts alone).
"""

from __future__ import annotations

import argparse
import io
import statistics
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import tesserocr
from PIL import Image

from bench.engines import Figures, cpu_seconds
from ocrvault.config import Settings
from ocrvault.engines import registry
from ocrvault.engines.base import OcrEngine, RecognizeOptions
from ocrvault.engines.catalog import AUTO, RAPIDOCR, TESSERACT
from ocrvault.engines.layout import order_page
from ocrvault.engines.rapidocr import RapidOcrEngine, _line
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.model import Line, Page

MATCH_IOU = 0.5
# Tesseract's line boxes are tight; PP-OCR's recogniser was trained on the detector's
# boxes, which are unclipped (grown) by about this fraction of the line's height.
CROP_MARGIN = 0.15

Reader = Callable[[Image.Image, RecognizeOptions], Page]


def tesseract_lines_pp_ocr(tesseract: TesseractEngine, rapidocr: RapidOcrEngine) -> Reader:
    api = tesserocr.PyTessBaseAPI(path=str(tesseract.tessdata_dir), lang="eng",
                                  psm=tesserocr.PSM.AUTO)
    ocr, decoder = rapidocr._loaded()
    recogniser: Any = ocr._load_rec_model()

    def read(image: Image.Image, options: RecognizeOptions) -> Page:
        from rapidocr.ch_ppocr_rec import TextRecInput

        rgb = image.convert("RGB")
        api.SetImage(rgb.convert("L"))
        iterator = api.AnalyseLayout()
        boxes = []
        if iterator is not None:
            level = tesserocr.RIL.TEXTLINE
            while True:
                box = iterator.BoundingBox(level)
                if box is not None:
                    boxes.append(box)
                if not iterator.Next(level):
                    break
        pixels = np.asarray(rgb)
        crops, polygons = [], []
        for left, top, right, bottom in boxes:
            pad = round(CROP_MARGIN * (bottom - top))
            left, top = max(left - pad, 0), max(top - pad, 0)
            right, bottom = min(right + pad, rgb.width), min(bottom + pad, rgb.height)
            crops.append(pixels[top:bottom, left:right, ::-1])  # RapidOCR works in BGR
            polygons.append([float(v) for v in (left, top, right, top, right, bottom,
                                                left, bottom)])
        lines: list[Line] = []
        if crops:
            with decoder.reading(options, options.deadline()):
                out = recogniser(TextRecInput(img=crops))
            lines = [_line(text, polygon, score) for text, polygon, score
                     in zip(out.txts, polygons, out.scores, strict=True) if text.strip()]
        return Page(number=1, width=rgb.width, height=rgb.height, angle=0.0,
                    engine="tesseract-lines+pp-ocr", lines=lines)

    return read


def ensemble(tesseract: OcrEngine, rapidocr: OcrEngine) -> Reader:
    def read(image: Image.Image, options: RecognizeOptions) -> Page:
        theirs = order_page(tesseract.recognize(image, options)).lines
        page = rapidocr.recognize(image, options)
        lines = []
        for line in page.lines:
            overlaps = [other for other in theirs if _iou(line, other) >= MATCH_IOU]
            better = len(overlaps) == 1 and overlaps[0].confidence > line.confidence
            lines.append(overlaps[0] if better else line)
        return page.model_copy(update={"lines": lines, "engine": "ensemble"})

    return read


def _iou(a: Line, b: Line) -> float:
    (al, at, ar, ab), (bl, bt, br, bb) = _bounds(a), _bounds(b)
    width, height = min(ar, br) - max(al, bl), min(ab, bb) - max(at, bt)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / ((ar - al) * (ab - at) + (br - bl) * (bb - bt) - inter)


def _bounds(line: Line) -> tuple[float, float, float, float]:
    xs, ys = line.polygon[0::2], line.polygon[1::2]
    return (min(xs), min(ys), max(xs), max(ys))


def main() -> None:
    from tests.accuracy import corpus

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="*", help="only these kinds (e.g. receipt)")
    args = parser.parse_args()

    catalog = registry.catalog(Settings())
    tesseract, rapidocr = catalog.get(TESSERACT), catalog.get(RAPIDOCR)
    assert isinstance(tesseract, TesseractEngine) and isinstance(rapidocr, RapidOcrEngine)
    readers: dict[str, Reader] = {
        name: catalog.get(name).recognize for name in (TESSERACT, RAPIDOCR, AUTO)}
    readers["tesseract lines + pp-ocr"] = tesseract_lines_pp_ocr(tesseract, rapidocr)
    readers["ensemble"] = ensemble(tesseract, rapidocr)

    samples = [s for s in corpus() if not args.kinds or s.kind in args.kinds]
    images = {s.name: Image.open(io.BytesIO(s.data)) for s in samples}
    for image in images.values():
        image.load()
    options = RecognizeOptions(languages=("eng",))
    for read in readers.values():  # load models and sessions outside the timings
        read(images[samples[0].name], options)
    figures: dict[tuple[str, str], Figures] = defaultdict(Figures)
    for name, read in readers.items():
        for sample in samples:
            start = cpu_seconds()
            page = order_page(read(images[sample.name], options))
            figures[(name, sample.kind)].add(page, sample, cpu_seconds() - start)
    catalog.close()

    print(f"{'engine':26} {'kind':11} {'files':>5} {'CER':>7} {'F1 (spaces)':>11} "
          f"{'F1 (punct.)':>11} {'CPU s/page':>10}")
    for (name, kind), fig in sorted(figures.items(), key=lambda item: item[0][1]):
        print(f"{name:26} {kind:11} {len(fig.cer):5} {statistics.fmean(fig.cer):7.3f} "
              f"{statistics.fmean(fig.f1):11.3f} {statistics.fmean(fig.f1_punct):11.3f} "
              f"{statistics.fmean(fig.cpu):10.2f}")


if __name__ == "__main__":
    main()

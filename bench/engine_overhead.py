"""The Tesseract engine's CPU per page against a raw tesserocr call on the same grey page,
measured in the same run (issue 18: "cut the engine's CPU above the raw call").

Raw: ``SetImage(grey)``, ``Recognize()``, ``GetUTF8Text()`` on one loaded API, page
segmentation mode 3 (as the engine), no layout pass of its own, no orientation, no
scaling. Engine: ``TesseractEngine.recognize`` on the decoded page (grey conversion,
layout analysis, deskew or upscale where the layout asks, the result model).

Rounds are interleaved (raw, engine, raw, engine, ...) and each page's figure is the
median of its rounds, so that other work on the machine weighs on both alike. CPU time is
the process's user + system time. The CER columns say what the engine's extra passes buy.
The last lines split the engine's time: the layout pass (reused by recognition when the
page is read as given), and the Python work of turning Tesseract's words into the result
model. Run: ``python -m bench.engine_overhead [--rounds 3] [--kinds receipt]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
from collections.abc import Callable

import tesserocr
from PIL import Image

from bench.engines import cpu_seconds
from ocrvault.config import Settings
from ocrvault.engines.base import RecognizeOptions
from ocrvault.engines.layout import order_page
from ocrvault.engines.pixels import eight_bit
from ocrvault.engines.tesseract import TesseractEngine, _read_lines, _View
from tests.accuracy import Sample, cer, corpus


def grey(image: Image.Image) -> Image.Image:
    flat = eight_bit(image)
    return flat if flat.mode == "L" else flat.convert("L")


def timed(work: Callable[[], object]) -> tuple[float, object]:
    start = cpu_seconds()
    result = work()
    return cpu_seconds() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", default="", help="comma-separated kinds (default: all)")
    args = parser.parse_args()

    engine = TesseractEngine(Settings().tessdata_dir)
    api = tesserocr.PyTessBaseAPI(path=str(engine.tessdata_dir), lang="eng",
                                  psm=tesserocr.PSM.AUTO)
    kinds = set(filter(None, args.kinds.split(",")))
    samples: list[Sample] = [s for s in corpus() if not kinds or s.kind in kinds]
    images = [Image.open(io.BytesIO(s.data)) for s in samples]
    for image in images:
        image.load()
    greys = [grey(image) for image in images]
    options = RecognizeOptions(languages=("eng",))

    def raw(page: Image.Image) -> str:
        api.SetImage(page)
        api.Recognize()
        return str(api.GetUTF8Text())

    engine.recognize(images[0], options)  # load the engine's API outside the timings
    raw(greys[0])
    raw_cpu: list[list[float]] = [[] for _ in samples]
    engine_cpu: list[list[float]] = [[] for _ in samples]
    raw_text, engine_text = [""] * len(samples), [""] * len(samples)
    for _ in range(args.rounds):
        for k, (image, page) in enumerate(zip(images, greys, strict=True)):
            seconds, text = timed(lambda page=page: raw(page))  # type: ignore[misc]
            raw_cpu[k].append(seconds)
            raw_text[k] = str(text)
            seconds, result = timed(lambda image=image: engine.recognize(image, options))  # type: ignore[misc]
            engine_cpu[k].append(seconds)
            engine_text[k] = order_page(result).text  # type: ignore[arg-type]

    print(f"{'page':20} {'kind':10} {'raw CPU s':>9} {'engine CPU s':>12} {'ratio':>6} "
          f"{'raw CER':>8} {'engine CER':>10}")
    raws, engines = [], []
    for k, sample in enumerate(samples):
        r, e = statistics.median(raw_cpu[k]), statistics.median(engine_cpu[k])
        raws.append(r)
        engines.append(e)
        print(f"{sample.name:20} {sample.kind:10} {r:9.3f} {e:12.3f} {e / r:6.2f} "
              f"{cer(raw_text[k], sample.truth):8.3f} {cer(engine_text[k], sample.truth):10.3f}")
    raw_mean, engine_mean = statistics.fmean(raws), statistics.fmean(engines)
    raw_cer, engine_cer = (statistics.fmean(cer(t, s.truth) for t, s in
                                            zip(texts, samples, strict=True))
                           for texts in (raw_text, engine_text))
    print(f"{'mean':31} {raw_mean:9.3f} {engine_mean:12.3f} {engine_mean / raw_mean:6.2f} "
          f"{raw_cer:8.3f} {engine_cer:10.3f}")

    # Where the engine's time goes, on the pages as given (no turn, no scale).
    layout, layout_and_read, words = [], [], []
    for page in greys:
        api.SetImage(page)
        layout.append(timed(api.AnalyseLayout)[0])
        api.SetImage(page)
        layout_and_read.append(timed(lambda: (api.AnalyseLayout(), api.Recognize()))[0])
        view = _View.of(page.size, 0.0, 1.0)
        words.append(timed(lambda view=view: _read_lines(api.GetIterator(), view))[0])  # type: ignore[misc]
    print(f"\nlayout pass alone: {statistics.fmean(layout) * 1000:.1f} ms/page; layout pass + "
          f"recognition: {statistics.fmean(layout_and_read):.3f} s/page against raw "
          f"{raw_mean:.3f} (recognition reuses the layout)")
    print(f"words into the result model (Python): {statistics.fmean(words) * 1000:.1f} ms/page")
    api.End()
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

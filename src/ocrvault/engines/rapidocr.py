"""RapidOCR on ONNX Runtime: PP-OCRv6 small text detection and recognition.

The models are the ones the ``rapidocr`` wheel ships (Apache-2.0, PaddleOCR's weights):
they are loaded from the installed package by path, so nothing is fetched at run time,
and a missing file is a start-up error, never a download. The sessions are created once
per process, on the first page, and shared by every worker thread (ONNX Runtime sessions
are safe to run from several threads); each run uses ``threads`` intra-op threads, so
``workers`` worker threads use about ``workers x threads`` cores. ONNX Runtime's CUDA
provider is used when the installed onnxruntime has it; the CPU path is the default.

Cost, measured on the shared receipts (CPU seconds of one core, mean CER):

- the wheel's defaults (detector input's shorter side scaled *up* to 736 px, lines
  recognised 6 at a time, each padded to at least 320 px wide): 3.5 s, 0.041;
- the detector reads the page with its longer side at most ``DET_SIDE`` = 960 px
  (736: CER 0.045, small print is lost; 864: 0.040);
- lines are recognised one at a time on the CPU, each padded to at least
  ``REC_MIN_WIDTH`` = 120 px: a batch pads every line to its widest, and a receipt's
  short prices padded to 320 px cost more than they read (batches of 6: 1.95 s, 0.035;
  of 1: 1.66 s, 0.033). On CUDA, batches of 6 (a GPU is faster on fewer, larger runs);
- ONNX Runtime's memory arena reuses buffers between runs: 1.66 s instead of 1.77 s,
  for about 120 MB more resident memory (0.62 GB per process after 15 receipts).

The angle classifier is off: it costs time and the receipts read upright. A page turned
by 90 or 180 degrees reads badly (``auto`` hands those to Tesseract).

The recogniser reads Latin letters, digits and Chinese (its dictionary is PaddleOCR's
Chinese and English one), so the engine offers ``eng`` and ``chi_sim`` only; a page in
German, French or Spanish needs Tesseract's models for its accents. Its dictionary holds
18,700 characters, so on an English page it sometimes writes a look-alike from another
script (``jàlan``, ``selāngor``, a fullwidth parenthesis, a Chinese character for a smudge): a
reading without ``chi_sim`` picks, at each step, the likeliest character of English's own
set (:data:`ALPHABETS`), as Tesseract's ``eng`` model can write only its own. Measured on
the shared receipts: mean CER 0.033 to 0.032, word F1 0.876 to 0.879; no cost.

A line's text is CTC's likeliest labelling (prefix beam search, :func:`decode`), not
RapidOCR's best path: the recogniser, trained mostly on Chinese, spreads many spaces of
tightly set English print over several steps, none of which outweighs its blank, and the
best path drops them. Measured on the shared receipts: word F1 split on whitespace 0.8798
to 0.882, with punctuation apart 0.929 to 0.930, CER 0.032 either way; other kinds
unchanged; about 0.04 CPU s more a receipt.

``timeout_seconds``: the page's deadline is checked after detection and after every
batch of lines (one line on the CPU), and a page past it fails with
``processing_timeout`` as Tesseract's does. ONNX Runtime cannot be stopped inside a run,
so a page may overrun its deadline by one detection (bounded by ``DET_SIDE``) or one
batch of lines.

Residual risks: a word's box is apportioned from its line's box (the recogniser gives
lines), so it is approximate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from PIL import Image

from ocrvault.engines.alphabets import ALPHABETS, LANGUAGES, RAPIDOCR, rapidocr_version
from ocrvault.engines.base import RecognizeOptions, timeout_error
from ocrvault.engines.layout import bounds, row_order
from ocrvault.engines.pixels import eight_bit
from ocrvault.errors import ErrorCode, InputRejected, ProcessingError
from ocrvault.model import EngineInfo, Line, Page, Word

NAME = RAPIDOCR
DET_SIDE = 960
# Lines are cut from the page as given up to this side (RapidOCR's default shrinks pages
# over 2000 px first, and with them the lines the recogniser reads): receipts
# photographed 2100-2250 px tall keep their detail. Word F1 0.879 -> 0.880, same cost.
MAX_SIDE = 4096
REC_MIN_WIDTH = 120
MODELS = {"Det": "PP-OCRv6_det_small.onnx", "Rec": "PP-OCRv6_rec_small.onnx",
           "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx"}
_CUDA = "CUDAExecutionProvider"


def unreadable_languages(languages: tuple[str, ...]) -> str | None:
    """Why this engine cannot read ``languages``, or None when it can."""
    missing = [code for code in languages if code not in LANGUAGES]
    if not missing:
        return None
    return (f"engine {NAME} reads: {', '.join(sorted(LANGUAGES))}; "
            f"use engine=tesseract for {'+'.join(missing)}.")


class RapidOcrEngine:
    """An :class:`~ocrvault.engines.base.OcrEngine`; safe to share between threads."""

    def __init__(self, threads: int = 1, det_side: int = DET_SIDE,
                 rec_min_width: int = REC_MIN_WIDTH) -> None:
        self._threads = threads
        self._det_side = det_side
        self._rec_min_width = rec_min_width
        self._ocr: Any = None
        self._decoder: LineDecoder | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._info = EngineInfo(name=NAME, version=rapidocr_version())

    @property
    def info(self) -> EngineInfo:
        return self._info

    @property
    def uses_gpu(self) -> bool:
        return _CUDA in onnxruntime.get_available_providers()

    def languages(self) -> frozenset[str]:
        return LANGUAGES

    def recognize(self, image: Image.Image, options: RecognizeOptions) -> Page:
        refused = unreadable_languages(options.languages)
        if refused:
            raise InputRejected(ErrorCode.INVALID_PARAMETER, refused)
        deadline = options.deadline()
        rgb = _to_rgb(image)
        ocr, decoder = self._loaded()
        with decoder.reading(options, deadline):
            output = ocr(np.asarray(rgb))
        if deadline is not None and time.monotonic() >= deadline:
            raise timeout_error(options)
        found = [_line(text, box, score)
                 for text, box, score in zip(output.txts or (), _boxes(output),
                                             output.scores or (), strict=True)
                 if text.strip()]
        # Detected boxes come roughly top to bottom; in rows (a receipt's price beside its
        # item), left to right. The pipeline's layout step then finds any columns.
        lines = [found[i] for i in row_order([bounds(line.polygon) for line in found])]
        return Page(number=options.page_number, width=rgb.width, height=rgb.height, angle=0.0,
                    engine=NAME, lines=lines)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._ocr = self._decoder = None

    def _loaded(self) -> tuple[Any, LineDecoder]:
        """The RapidOCR pipeline and its recogniser's decoder, the sessions created on
        first use (once per process)."""
        with self._lock:
            if self._closed:
                raise ProcessingError(ErrorCode.INTERNAL_ERROR,
                                      "the RapidOCR engine was closed; build a new one")
            if self._ocr is None or self._decoder is None:
                self._ocr, self._decoder = self._create()
            return self._ocr, self._decoder

    def _create(self) -> tuple[Any, LineDecoder]:
        import rapidocr

        # RapidOCR logs to its own stderr handler, past the service's logging and its
        # filters; its records join the service's log instead (errors only: no page text).
        library_log = logging.getLogger("RapidOCR")
        library_log.handlers.clear()
        library_log.propagate = True
        ocr: Any = rapidocr.RapidOCR(params=self.session_params())
        # The recogniser is loaded now rather than on the first line, so that its CTC
        # decoder can be replaced once, before any thread reads. rapidocr has no public
        # way to reach the recogniser or its decoder: this private method, the decoder's
        # ``character`` list and the way it is called are rapidocr 3.10's (pyproject.toml
        # pins the tested range; tests/unit/test_engine_rapidocr.py fails on a change).
        recogniser = ocr._load_rec_model()
        decoder = recogniser.postprocess_op = LineDecoder(list(recogniser.postprocess_op.character))
        return ocr, decoder

    def session_params(self) -> dict[str, Any]:
        """RapidOCR's settings for the sessions: the wheel's models by path, ``threads``
        intra-op threads, CUDA where onnxruntime has it; refused if a model is missing."""
        import rapidocr

        models = Path(rapidocr.__file__).parent / "models"
        params: dict[str, Any] = {
            "Global.log_level": "error",
            "Global.use_cls": False,
            "Global.max_side_len": MAX_SIDE,
            "Det.limit_type": "max",
            "Det.limit_side_len": self._det_side,
            "Rec.rec_img_shape": [3, 48, self._rec_min_width],
            "Rec.rec_batch_num": 6 if self.uses_gpu else 1,
            "EngineConfig.onnxruntime.intra_op_num_threads": self._threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            "EngineConfig.onnxruntime.enable_cpu_mem_arena": True,
            "EngineConfig.onnxruntime.use_cuda": self.uses_gpu,
        }
        for stage, filename in MODELS.items():
            path = models / filename
            if not path.is_file():
                raise ProcessingError(
                    ErrorCode.INTERNAL_ERROR,
                    f"the RapidOCR model {path} is missing; reinstall the rapidocr package",
                )
            params[f"{stage}.model_path"] = str(path)
        return params


class LineDecoder:
    """The recogniser's CTC decoder, as this engine reads a page: it stands in for
    RapidOCR's own and is called, for each batch of lines, on the thread that called
    RapidOCR, so the reading in progress on that thread sets how it decodes (languages'
    alphabets) and until when (the page's deadline, checked after every batch)."""

    def __init__(self, characters: list[str]) -> None:
        self._characters = characters
        self._masks: dict[tuple[str, ...], Any] = {}
        self._local = threading.local()

    @contextmanager
    def reading(self, options: RecognizeOptions, deadline: float | None) -> Iterator[None]:
        """Decode in ``options.languages``' alphabets inside the block, on this thread,
        and fail with a timeout once ``deadline`` has passed."""
        self._local.mask = self._mask(options.languages)
        self._local.options, self._local.deadline = options, deadline
        try:
            yield
        finally:
            self._local.mask = self._local.options = self._local.deadline = None

    def __call__(self, preds: Any, *args: Any, **kwargs: Any) -> tuple[list[Any], list[Any]]:
        """(text, confidence) of each line of the batch, and no word results (RapidOCR's
        word boxes are not asked for)."""
        deadline = getattr(self._local, "deadline", None)
        if deadline is not None and time.monotonic() >= deadline:
            raise timeout_error(self._local.options)
        mask = getattr(self._local, "mask", None)
        if mask is not None:
            preds = np.where(mask, preds, 0.0)
        return [decode(row, self._characters) for row in preds], []

    def _mask(self, languages: tuple[str, ...]) -> Any:
        """Which of the recogniser's characters the languages write; None: all."""
        key = tuple(sorted(set(languages)))
        if key not in self._masks:  # a race computes the same mask twice, harmlessly
            alphabets = [ALPHABETS[code] for code in key]
            if not key or any(alphabet is None for alphabet in alphabets):
                self._masks[key] = None
            else:
                allowed = frozenset().union(*(a for a in alphabets if a is not None))
                # Index 0 is CTC's blank (it separates characters): always allowed.
                self._masks[key] = np.array([index == 0 or char in allowed for index, char
                                             in enumerate(self._characters)])
        return self._masks[key]


def decode(probs: Any, characters: list[str]) -> tuple[str, float]:
    """One line's text and confidence from the recogniser's per-step probabilities
    (steps x characters; index 0 is CTC's blank).

    The text is the likeliest labelling, its probability summed over every alignment of
    it to the steps, as CTC defines it, found by prefix beam search (:data:`BEAM`
    prefixes kept at each step). CTC's best path (the likeliest character at each step,
    repeats collapsed) is only the likeliest single alignment: it drops what the
    recogniser spreads over steps, as a space of tightly set print at 0.3-0.49 on two or
    three steps (``6%supplies``, ``Fax:03-55423213``), and keeps what one step alone
    supports (``Payrment``). Not every line gains: on the shared receipts one run of zeros
    reads one zero shorter. The confidence is the mean probability of the best path's
    characters, as RapidOCR's (``auto``'s upright check is set on it).
    """
    best = probs.argmax(axis=1)
    first = np.ones(len(best), dtype=bool)
    first[1:] = best[1:] != best[:-1]
    steps = np.flatnonzero(first & (best != 0))
    if not steps.size:
        return "", 0.0
    confidence = float(probs[steps, best[steps]].mean())
    labels = _likeliest_labelling(probs)
    return "".join(characters[label] for label in labels).strip(), confidence


# Prefixes the beam search keeps at each step (receipts' word F1 0.8815 with 3, 0.8823
# with 5, 0.8821 with 8 or 10: converged), and the least probability a character must
# have at a step to extend them there (else the step's likeliest alone).
BEAM = 8
_LEAST = 1e-3


def _likeliest_labelling(probs: Any) -> tuple[int, ...]:
    """CTC prefix beam search: for each kept prefix, the probabilities that the steps so
    far spell it ending in a blank and ending in its last character."""
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (1.0, 0.0)}
    for row in probs:
        # A step whose every character an alphabet masks says nothing: it is skipped.
        least = min(_LEAST, float(row.max()))
        if least <= 0.0:
            continue
        extended: dict[tuple[int, ...], list[float]] = {}
        candidates = [(int(c), float(row[c])) for c in np.flatnonzero(row >= least)]
        for prefix, (blank_end, char_end) in beams.items():
            for char, p in candidates:
                if char == 0:  # a blank keeps the prefix
                    extended.setdefault(prefix, [0.0, 0.0])[0] += (blank_end + char_end) * p
                elif prefix and prefix[-1] == char:
                    # Repeated: collapses into the prefix, unless a blank came between.
                    extended.setdefault(prefix, [0.0, 0.0])[1] += char_end * p
                    extended.setdefault((*prefix, char), [0.0, 0.0])[1] += blank_end * p
                else:
                    extended.setdefault((*prefix, char), [0.0, 0.0])[1] += (
                        (blank_end + char_end) * p)
        kept = sorted(extended.items(), key=lambda item: -sum(item[1]))[:BEAM]
        total = sum(sum(ends) for _, ends in kept) or 1.0  # rescaled: no underflow
        beams = {prefix: (ends[0] / total, ends[1] / total) for prefix, ends in kept}
    return max(beams.items(), key=lambda item: sum(item[1]))[0]


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB, as the detector and recogniser take it."""
    flat = eight_bit(image)
    return flat if flat.mode == "RGB" else flat.convert("RGB")


def _boxes(output: Any) -> list[list[float]]:
    """Each line's quadrilateral (top-left, top-right, bottom-right, bottom-left) as 8 numbers."""
    if output.boxes is None:
        return []
    return [[round(float(v), 1) for point in box for v in point] for box in output.boxes]


def _line(text: str, polygon: list[float], score: float) -> Line:
    confidence = min(max(float(score), 0.0), 1.0)
    return Line(text=text.strip(), polygon=polygon, confidence=confidence,
                words=words_of(text.strip(), polygon, confidence))


def words_of(text: str, polygon: list[float], confidence: float) -> list[Word]:
    """The recogniser reads whole lines, so each word's box is the slice of the line's
    quadrilateral that its characters take (by character count, spaces included): close
    for the monospaced print of receipts, approximate for proportional type."""
    total = len(text)
    words: list[Word] = []
    start = 0
    for word in text.split(" "):
        end = start + len(word)
        if word:
            words.append(Word(text=word, polygon=_slice(polygon, start / total, end / total),
                              confidence=confidence))
        start = end + 1
    return words


def _slice(polygon: list[float], a: float, b: float) -> list[float]:
    """The part of the quadrilateral between fractions ``a`` and ``b`` of its length."""
    x1, y1, x2, y2, x3, y3, x4, y4 = polygon

    def along(xs: float, ys: float, xe: float, ye: float, t: float) -> tuple[float, float]:
        return (round(xs + (xe - xs) * t, 1), round(ys + (ye - ys) * t, 1))

    return [*along(x1, y1, x2, y2, a), *along(x1, y1, x2, y2, b),
            *along(x4, y4, x3, y3, b), *along(x4, y4, x3, y3, a)]

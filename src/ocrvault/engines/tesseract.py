"""Tesseract through tesserocr: one loaded API per worker thread, never a subprocess per page.

Loading a language model costs far more than reading a receipt, so each worker thread
keeps one ``PyTessBaseAPI`` per language set loaded for the life of the engine.
tesserocr releases the GIL while Tesseract works, so N worker threads read N pages at
once; the page image goes to Tesseract in memory and nothing is written to disk.

Orientation and skew come from the layout analysis that recognition needs anyway (and
reuses): the baselines of the text lines give their axis (horizontal or vertical) and
their skew, which is undone when above half a degree. Whether the text is upside down
(0 or 180, 90 or 270) is decided by reading: the dev corpus's pages average word
confidences of 0.63-0.96 upright and 0.28-0.53 upside down, so a page that reads below
0.6 is read again turned by 180 degrees and the clearly better reading wins.
Tesseract's OSD was measured and not used: it took 0.1-0.45 s a receipt (about half as
long as reading it, downscaled or not) and called 2 of 14 upright receipts upside down,
at confidences as high as those of its right answers, so no threshold made it safe. An
upright, level page thus costs one recognition; a turned or skewed one a layout analysis
more; an upside-down one (or one that reads badly) two recognitions.

Residual risks: Tesseract's layout analysis (unlike recognition) has no deadline, so
``timeout_seconds`` bounds a page only approximately; a page of mixed orientations is
turned by its dominant one; a ``close()`` waits for readings in progress.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Tesseract can spread one page over OpenMP threads. ocrvault already reads one page per
# worker thread, so OpenMP threads on top would oversubscribe the CPUs (workers x cores)
# and slow every page down; with one thread each, the worker pool alone decides
# parallelism. libgomp reads this once, when it is loaded, so it must be set before
# tesserocr (and with it libtesseract) is first imported. The tesserocr wheel's own
# libtesseract has no OpenMP; Debian's, which a source build of tesserocr links, has.
os.environ["OMP_THREAD_LIMIT"] = "1"

import tesserocr
from PIL import Image

from ocrvault.engines.base import RecognizeOptions, timeout_error
from ocrvault.engines.pixels import eight_bit
from ocrvault.engines.tessdata import find_tessdata, installed_languages
from ocrvault.errors import ErrorCode, InputRejected, ProcessingError
from ocrvault.model import EngineInfo, Line, Page, Word

# Leptonica writes diagnostics straight to stderr, outside logging and its filters;
# they carry no document text, but a service's stderr is no place for native chatter.
tesserocr.set_leptonica_log_level(tesserocr.LeptLogLevel.NONE)

_Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)
# Loaded APIs kept per thread (one per language set, 15-45 MB each).
_APIS_PER_THREAD = 4

# Below this a page's skew is left alone: resampling costs more than it helps.
_MIN_DESKEW_DEGREES = 0.5
# A page whose words average below this confidence is read again turned by 180 degrees;
# the turned reading is kept only when its confidence is higher by the margin.
_FLIP_CHECK_BELOW = 0.6
_FLIP_MARGIN = 0.1
# Text lines lower than this (pixels, median) are upscaled towards _TARGET_LINE_PX:
# Tesseract's binarisation loses thin strokes of small text.
_SMALL_LINE_PX = 18.0
_TARGET_LINE_PX = 24.0
# Measured once (2026-11) on the dev receipts: 1.5x reads as well as 2x did (mean CER
# 0.108 both, 0.114 unscaled) for about half the extra pixels, which Tesseract pays for.
_MAX_UPSCALE = 1.5
_MAX_UPSCALED_PIXELS = 40_000_000


def library_version() -> str:
    """libtesseract's version: a static call, no API object is created."""
    return str(tesserocr.PyTessBaseAPI.Version())


class TesseractEngine:
    """The default :class:`~ocrvault.engines.base.OcrEngine`; safe to share between threads."""

    reads_grey = True  # Tesseract thresholds grey levels; colour is dropped on the way in

    def __init__(self, tessdata_dir: Path | None = None) -> None:
        self._tessdata = find_tessdata(tessdata_dir)
        self._languages = installed_languages(self._tessdata)
        self._info = EngineInfo(name="tesseract", version=library_version())
        self._local = _ThreadSlots()
        # Weak, so that the APIs of a thread that has ended are freed with it.
        self._slots: weakref.WeakSet[_Slot] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def info(self) -> EngineInfo:
        return self._info

    @property
    def tessdata_dir(self) -> Path:
        return self._tessdata

    def languages(self) -> frozenset[str]:
        return self._languages

    def recognize(self, image: Image.Image, options: RecognizeOptions) -> Page:
        langs = self._language_key(options.languages)
        deadline = options.deadline()
        gray = _to_gray(image)
        slot = self._slot(langs)
        with slot.lock:
            if slot.ended:
                raise _closed_error()
            try:
                view, lines = _read_page(slot.api, gray, options, deadline)
            finally:
                slot.api.Clear()  # drop the page image and text until the next page
        return Page(number=options.page_number, width=gray.width, height=gray.height,
                    angle=_normalise_angle(view.rotation), engine="tesseract", lines=lines)

    def close(self) -> None:
        """End every loaded API (waiting for readings in progress); later calls fail."""
        with self._lock:
            self._closed = True
            slots = list(self._slots)
        for slot in slots:
            slot.end()

    def _language_key(self, languages: tuple[str, ...]) -> str:
        if not languages:
            raise InputRejected(ErrorCode.INVALID_PARAMETER, "no OCR language was given")
        unknown = [code for code in languages if code not in self._languages]
        if unknown:
            raise InputRejected(
                ErrorCode.INVALID_PARAMETER,
                f"unknown OCR language {', '.join(map(repr, unknown))}; "
                f"available: {', '.join(sorted(self._languages))}",
            )
        return "+".join(dict.fromkeys(languages))

    def _slot(self, langs: str) -> _Slot:
        """This thread's API for ``langs``, loaded on first use; the least recently used of
        this thread's APIs is ended when one too many is loaded, so that requests cycling
        through language sets cannot grow memory without bound."""
        slots = self._local.slots
        slot = slots.get(langs)
        if slot is not None:
            slots.move_to_end(langs)
            return slot
        try:
            slot = _Slot(tesserocr.PyTessBaseAPI(path=str(self._tessdata), lang=langs,
                                                 psm=tesserocr.PSM.AUTO))
        except RuntimeError as exc:
            raise ProcessingError(
                ErrorCode.PROCESSING_FAILED,
                f"Tesseract could not load the language data for {langs!r}; "
                "check the tessdata folder",
            ) from exc
        with self._lock:
            closed = self._closed
            if not closed:
                self._slots.add(slot)
        if closed:
            slot.end()
            raise _closed_error()
        slots[langs] = slot
        if len(slots) > _APIS_PER_THREAD:
            slots.popitem(last=False)[1].end()
        return slot


@dataclass(eq=False)
class _Slot:
    """One loaded API and the lock that keeps ``close()`` from ending it mid-page."""

    api: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    ended: bool = False

    def end(self) -> None:
        with self.lock:
            if not self.ended:
                self.api.End()
                self.ended = True


class _ThreadSlots(threading.local):
    def __init__(self) -> None:
        self.slots: OrderedDict[str, _Slot] = OrderedDict()


def _closed_error() -> ProcessingError:
    return ProcessingError(ErrorCode.INTERNAL_ERROR,
                           "the Tesseract engine was closed; build a new one")


def _to_gray(image: Image.Image) -> Image.Image:
    """8-bit grey, which Tesseract reads anyway."""
    flat = eight_bit(image)
    return flat if flat.mode == "L" else flat.convert("L")


def _read_page(api: Any, gray: Image.Image, options: RecognizeOptions,
               deadline: float | None) -> tuple[_View, list[Line]]:
    """Lay the page out, turn and scale it as the layout asks, read it (twice if it reads badly)."""
    api.SetImage(gray)
    layout = _read_layout(api.AnalyseLayout())
    if layout is None:
        return _View.of(gray.size, 0.0, 1.0), []
    rotation = float(layout.quarter) if options.detect_orientation else 0.0
    if options.deskew and abs(layout.skew) > _MIN_DESKEW_DEGREES:
        rotation += layout.skew
    scale = _upscale(layout.line_px, gray.size)
    view = _View.of(gray.size, rotation, scale)
    lines = _recognize(api, gray, view, options, deadline)
    if options.detect_orientation and lines and _mean_confidence(lines) < _FLIP_CHECK_BELOW:
        turned = _View.of(gray.size, rotation + 180.0, scale)
        turned_lines = _recognize(api, gray, turned, options, deadline)
        if _mean_confidence(turned_lines) > _mean_confidence(lines) + _FLIP_MARGIN:
            return turned, turned_lines
    return view, lines


def _recognize(api: Any, gray: Image.Image, view: _View, options: RecognizeOptions,
               deadline: float | None) -> list[Line]:
    if not view.is_identity:
        api.SetImage(view.render(gray))
    # else the API still holds ``gray`` and the layout of it, which Recognize reuses.
    timeout_ms = 0
    if deadline is not None:
        timeout_ms = math.ceil((deadline - time.monotonic()) * 1000)
        if timeout_ms <= 0:
            raise timeout_error(options)
    if not api.Recognize(timeout_ms):
        if deadline is not None and time.monotonic() >= deadline:
            raise timeout_error(options)
        raise ProcessingError(ErrorCode.PROCESSING_FAILED,
                              f"Tesseract failed to read page {options.page_number}")
    return _read_lines(api.GetIterator(), view)


@dataclass(frozen=True, slots=True)
class _Baseline:
    angle: float  # degrees, clockwise from the +x axis (image y points down)
    length: float
    box: _Box


@dataclass(frozen=True, slots=True)
class _Layout:
    quarter: int  # 0 or 90: the axis the text lines run along
    skew: float  # degrees clockwise of the lines from that axis
    line_px: float  # median height of a text line, across its baseline


def _read_layout(iterator: Any) -> _Layout | None:
    """Axis, skew and line height from the text lines' baselines; None when there is no text.

    Baselines do not tell 0 from 180 degrees (nor 90 from 270): reading does, later.
    """
    if iterator is None or iterator.Empty(tesserocr.RIL.TEXTLINE):
        return None
    found: list[_Baseline] = []
    while True:
        baseline = iterator.Baseline(tesserocr.RIL.TEXTLINE)
        box = _box(iterator.BoundingBox(tesserocr.RIL.TEXTLINE))
        if baseline and box:
            (x1, y1), (x2, y2) = baseline
            length = math.hypot(x2 - x1, y2 - y1)
            if length > 0:
                angle = math.degrees(math.atan2(y2 - y1, x2 - x1))
                found.append(_Baseline(angle, length, box))
        if not iterator.Next(tesserocr.RIL.TEXTLINE):
            break
    if not found:
        return None
    vertical = sum(line.length for line in found if abs(_fold(line.angle)) > 45)
    quarter = 90 if 2 * vertical > sum(line.length for line in found) else 0
    skews = [(_fold(line.angle - quarter), line.length) for line in found]
    heights = [_line_height(line, quarter, skew)
               for line, (skew, _) in zip(found, skews, strict=True) if abs(skew) <= 45]
    return _Layout(quarter, _weighted_median(skews), statistics.median(heights or [0.0]))


def _fold(degrees: float) -> float:
    """An undirected line angle in [-90, 90): a baseline and its reverse are one line."""
    return (degrees + 90.0) % 180.0 - 90.0


def _weighted_median(pairs: Iterable[tuple[float, float]]) -> float:
    ordered = sorted(pairs)
    half = sum(weight for _, weight in ordered) / 2
    running = itertools.accumulate(weight for _, weight in ordered)
    return next(value for (value, _), total in zip(ordered, running, strict=True)
                if total >= half)


def _line_height(line: _Baseline, quarter: int, skew: float) -> float:
    """The line's height without the part its skew adds to the upright box around it."""
    left, top, right, bottom = line.box
    across = (bottom - top) if quarter == 0 else (right - left)
    radians = math.radians(skew)
    return max(1.0, (across - line.length * abs(math.sin(radians))) / math.cos(radians))


def _upscale(line_px: float, size: tuple[int, int]) -> float:
    if not 0 < line_px < _SMALL_LINE_PX:
        return 1.0
    room = math.sqrt(_MAX_UPSCALED_PIXELS / (size[0] * size[1]))
    return max(1.0, min(_TARGET_LINE_PX / line_px, _MAX_UPSCALE, room))


@dataclass(frozen=True, slots=True)
class _View:
    """The image Tesseract reads: the given one turned back by ``rotation`` degrees (the
    text's clockwise tilt) and scaled by ``scale``. ``to_given`` is the affine map from the
    view's pixel space to the given image's, used both to render the view (PIL wants the
    inverse map) and to carry every box back, so the two can never disagree."""

    rotation: float
    scale: float
    size: tuple[int, int]
    given: tuple[int, int]
    to_given: tuple[float, float, float, float, float, float]

    @classmethod
    def of(cls, given: tuple[int, int], rotation: float, scale: float) -> _View:
        width, height = given
        radians = math.radians(rotation)
        # Rounded so that quarter turns are exact and map pixels onto pixels.
        cos, sin = round(math.cos(radians), 12), round(math.sin(radians), 12)
        size = (max(1, math.ceil((width * abs(cos) + height * abs(sin)) * scale - 1e-6)),
                max(1, math.ceil((width * abs(sin) + height * abs(cos)) * scale - 1e-6)))
        cx, cy = size[0] / (2 * scale), size[1] / (2 * scale)
        return cls(rotation, scale, size, given, (
            cos / scale, -sin / scale, width / 2 - cos * cx + sin * cy,
            sin / scale, cos / scale, height / 2 - sin * cx - cos * cy,
        ))

    @property
    def is_identity(self) -> bool:
        return self.rotation == 0 and self.scale == 1

    def render(self, gray: Image.Image) -> Image.Image:
        return gray.transform(self.size, Image.Transform.AFFINE, self.to_given,
                              resample=Image.Resampling.BICUBIC, fillcolor=255)

    def polygon(self, box: _Box) -> list[float]:
        """The box's corners in the given image, clockwise from the text's top-left."""
        left, top, right, bottom = box
        a, b, c, d, e, f = self.to_given
        width, height = self.given
        polygon: list[float] = []
        for x, y in ((left, top), (right, top), (right, bottom), (left, bottom)):
            polygon += (round(min(max(a * x + b * y + c, 0.0), width), 1),
                        round(min(max(d * x + e * y + f, 0.0), height), 1))
        return polygon


class _WordIterator(Protocol):
    """The part of tesserocr's ResultIterator that is read (levels are ``tesserocr.RIL``)."""

    def Empty(self, level: int) -> bool: ...
    def IsAtBeginningOf(self, level: int) -> bool: ...
    def BoundingBox(self, level: int) -> _Box | None: ...
    def GetUTF8Text(self, level: int) -> str: ...
    def Confidence(self, level: int) -> float: ...
    def Next(self, level: int) -> bool: ...


def _read_lines(iterator: _WordIterator | None, view: _View) -> list[Line]:
    """Lines of non-empty words; each line's box is grown to hold its words' boxes."""
    lines: list[Line] = []
    if iterator is None or iterator.Empty(tesserocr.RIL.WORD):
        return lines
    line_box: _Box | None = None
    words: list[tuple[str, _Box, float]] = []
    while True:
        if iterator.IsAtBeginningOf(tesserocr.RIL.TEXTLINE):
            _add_line(lines, line_box, words, view)
            line_box, words = _box(iterator.BoundingBox(tesserocr.RIL.TEXTLINE)), []
        text, box = _word_text(iterator), _box(iterator.BoundingBox(tesserocr.RIL.WORD))
        if text and box:
            words.append((text, box, _confidence(iterator.Confidence(tesserocr.RIL.WORD))))
        if not iterator.Next(tesserocr.RIL.WORD):
            break
    _add_line(lines, line_box, words, view)
    return lines


def _add_line(lines: list[Line], line_box: _Box | None,
              words: list[tuple[str, _Box, float]], view: _View) -> None:
    if not words:
        return
    boxes = [box for _, box, _ in words] + ([line_box] if line_box else [])
    union = (min(b[0] for b in boxes), min(b[1] for b in boxes),
             max(b[2] for b in boxes), max(b[3] for b in boxes))
    lines.append(Line(
        text=" ".join(text for text, _, _ in words),
        polygon=view.polygon(union),
        confidence=statistics.fmean(conf for _, _, conf in words),
        words=[Word(text=text, polygon=view.polygon(box), confidence=conf)
               for text, box, conf in words],
    ))


def _word_text(iterator: _WordIterator) -> str:
    try:
        text = iterator.GetUTF8Text(tesserocr.RIL.WORD)
    except UnicodeDecodeError:
        return "\N{REPLACEMENT CHARACTER}"
    except RuntimeError:  # tesserocr's "No text returned"
        return ""
    return text.strip() if isinstance(text, str) else ""


def _box(raw: object) -> _Box | None:
    """A (left, top, right, bottom) box, or None for anything else Tesseract hands back."""
    try:
        left, top, right, bottom = (int(v) for v in raw)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    return (left, top, right, bottom) if right >= left and bottom >= top else None


def _confidence(raw: object) -> float:
    try:
        value = float(raw) / 100  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return min(max(value, 0.0), 1.0) if math.isfinite(value) else 0.0


def _mean_confidence(lines: list[Line]) -> float:
    confidences = [word.confidence for line in lines for word in line.words]
    return statistics.fmean(confidences) if confidences else 0.0


def _normalise_angle(rotation: float) -> float:
    """Degrees in (-180, 180], as Azure AI Vision reports a page's angle."""
    angle = math.remainder(rotation, 360.0)
    return 180.0 if angle == -180.0 else round(angle, 2) + 0.0

"""Fake OCR engines for pipeline and queue tests: instant, failing, and held until released.

Register one with ``registry.register("fake", lambda settings: FixedEngine())`` or pass
it to ``Runtime.build(engine=...)``.
"""

from __future__ import annotations

import threading

from PIL.Image import Image

from ocrvault.engines.base import RecognizeOptions
from ocrvault.model import EngineInfo, Line, Page, Word

FIXED_LINES = ("Invoice 42", "Total 9.99")
FAKE_LANGUAGES = frozenset({"eng", "deu"})


def fixed_page(image: Image, options: RecognizeOptions) -> Page:
    """A page of FIXED_LINES, sized like ``image``: each word a 100 x 40 box."""
    lines = []
    for row, text in enumerate(FIXED_LINES):
        top, bottom = 50.0 + 60 * row, 90.0 + 60 * row
        words = [Word(text=word, polygon=[x, top, x + 100, top, x + 100, bottom, x, bottom],
                      confidence=0.9)
                 for x, word in zip((10.0, 120.0), text.split(), strict=True)]
        lines.append(Line(text=text, polygon=[10.0, top, 220.0, top, 220.0, bottom, 10.0, bottom],
                          confidence=0.9, words=words))
    return Page(number=options.page_number, width=image.width, height=image.height, angle=0.0,
                lines=lines)


class FixedEngine:
    """Answers every page at once with :func:`fixed_page`."""

    info = EngineInfo(name="fake-fixed", version="1")

    def languages(self) -> frozenset[str]:
        return FAKE_LANGUAGES

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        return fixed_page(image, options)

    def close(self) -> None:
        """Nothing is loaded."""


class FailingEngine(FixedEngine):
    """Raises RuntimeError on every page, as a crashing engine would."""

    info = EngineInfo(name="fake-failing", version="1")

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        raise RuntimeError("fake engine failure")


class BlockingEngine(FixedEngine):
    """Holds every page until ``release`` is set; ``started`` is set once a page is held.

    ``timeout`` only keeps a broken test from hanging a worker thread for ever.
    """

    info = EngineInfo(name="fake-blocking", version="1")

    def __init__(self, timeout: float = 60.0) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.timeout = timeout

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        self.started.set()
        if not self.release.wait(self.timeout):
            raise RuntimeError("BlockingEngine was never released")
        return super().recognize(image, options)


class SlowEngine(FixedEngine):
    """Takes ``seconds`` a page, as real OCR of a page does: for fairness and load tests."""

    info = EngineInfo(name="fake-slow", version="1")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        threading.Event().wait(self.seconds)
        return super().recognize(image, options)

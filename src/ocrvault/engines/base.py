"""The narrow contract every OCR engine meets; the pipeline knows nothing else.

An engine turns one decoded page image into a :class:`~ocrvault.model.Page`. It never
touches storage, keys or the network. It must be safe to call from several threads at
once (the tesseract engine keeps one loaded API per thread).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL.Image import Image

from ocrvault.errors import ErrorCode, ProcessingError
from ocrvault.model import EngineInfo, Page


@dataclass(frozen=True, slots=True)
class RecognizeOptions:
    languages: tuple[str, ...] = ("eng",)
    page_number: int = 1
    detect_orientation: bool = True
    deskew: bool = True
    # A bound on one page's recognition; None waits as long as it takes.
    timeout_seconds: float | None = None

    def deadline(self) -> float | None:
        """When (``time.monotonic()``) this page's recognition must end; None: never."""
        if self.timeout_seconds is None:
            return None
        return time.monotonic() + self.timeout_seconds


def timeout_error(options: RecognizeOptions) -> ProcessingError:
    """What every engine raises for a page that ran past ``options.timeout_seconds``."""
    return ProcessingError(
        ErrorCode.PROCESSING_TIMEOUT,
        f"reading page {options.page_number} took longer than {options.timeout_seconds:g} s; "
        "send smaller or fewer pages",
    )


def reads_grey(engine: OcrEngine) -> bool:
    """Whether ``engine`` reads grey levels only (``reads_grey = True`` on its class), so
    that pages can be decoded to grey before they reach it; an engine that does not say
    is given pages as they are."""
    return getattr(engine, "reads_grey", False) is True


@runtime_checkable
class OcrEngine(Protocol):
    @property
    def info(self) -> EngineInfo: ...

    def languages(self) -> frozenset[str]:
        """Language codes this engine can recognise (e.g. {'eng', 'deu'})."""
        ...

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        """OCR one page. Polygons are in the pixel space of ``image`` as given."""
        ...

    def close(self) -> None:
        """Release loaded models; the engine is not used afterwards."""
        ...

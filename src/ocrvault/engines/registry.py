"""OCR engines by name, so that settings choose one and tests add fakes without the
pipeline knowing which engine runs.

``tesseract`` is registered from the start; its module (and libtesseract) is imported
only when one is created, so processes that never OCR never load it.
"""

from __future__ import annotations

from collections.abc import Callable

from ocrvault.config import Settings
from ocrvault.engines.base import OcrEngine
from ocrvault.errors import ErrorCode, InputRejected

EngineFactory = Callable[[Settings], OcrEngine]

_factories: dict[str, EngineFactory] = {}


def register(name: str, factory: EngineFactory) -> None:
    """Make ``create(name, ...)`` call ``factory``; an existing name is replaced."""
    _factories[name] = factory


def available() -> frozenset[str]:
    return frozenset(_factories)


def create(name: str, settings: Settings) -> OcrEngine:
    factory = _factories.get(name)
    if factory is None:
        raise InputRejected(
            ErrorCode.INVALID_PARAMETER,
            f"unknown OCR engine {name!r}; available: {', '.join(sorted(_factories))}",
        )
    return factory(settings)


def _tesseract(settings: Settings) -> OcrEngine:
    from ocrvault.engines.tesseract import TesseractEngine

    return TesseractEngine(settings.tessdata_dir)


register("tesseract", _tesseract)

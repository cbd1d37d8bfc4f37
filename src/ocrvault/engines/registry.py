"""OCR engines by name, so that settings choose one and tests add fakes without the
pipeline knowing which engine runs.

``tesseract`` and ``rapidocr`` are registered from the start; their modules (and
libtesseract, ONNX Runtime) are imported only when one is created, so processes that
never OCR never load them. :func:`catalog` offers them by name, with ``auto``.
"""

from __future__ import annotations

from collections.abc import Callable

from ocrvault.config import Settings
from ocrvault.engines.base import OcrEngine
from ocrvault.engines.catalog import EngineCatalog
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


def _rapidocr(settings: Settings) -> OcrEngine:
    from ocrvault.engines.rapidocr import RapidOcrEngine

    return RapidOcrEngine(threads=settings.rapidocr_threads)


register("rapidocr", _rapidocr)


def catalog(settings: Settings) -> EngineCatalog:
    """Every registered engine (and ``auto``), each created when first asked for."""
    factories = {name: (lambda name=name: create(name, settings))
                 for name in _factories}
    return EngineCatalog(factories, settings.default_engine)

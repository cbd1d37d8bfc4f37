"""OCR engines by name, so that settings choose one and tests add fakes without the
pipeline knowing which engine runs.

``tesseract`` and ``rapidocr`` are registered from the start; their modules (and
libtesseract, ONNX Runtime) are imported only when one is created, so processes that
never OCR never load them. :func:`catalog` offers them by name, with ``auto``. Each is
registered with a description that creates nothing: Tesseract's languages from its
tessdata folder (and libtesseract's version, a static call), RapidOCR's from its fixed
alphabets, so that a node that never runs OCR describes them and loads neither.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from ocrvault.config import Settings
from ocrvault.engines.alphabets import LANGUAGES, RAPIDOCR, rapidocr_version
from ocrvault.engines.base import OcrEngine
from ocrvault.engines.catalog import EngineCatalog, EngineSpec
from ocrvault.engines.tessdata import find_tessdata, installed_languages
from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.model import EngineInfo

EngineFactory = Callable[[Settings], OcrEngine]
SpecFactory = Callable[[Settings], EngineSpec]

_factories: dict[str, EngineFactory] = {}
_specs: dict[str, SpecFactory] = {}


def register(name: str, factory: EngineFactory, spec: SpecFactory | None = None) -> None:
    """Make ``create(name, ...)`` call ``factory``; an existing name is replaced. ``spec``
    describes the engine without creating it; without one, describing it creates it."""
    _factories[name] = factory
    _specs.pop(name, None)
    if spec is not None:
        _specs[name] = spec


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


def _tesseract_spec(settings: Settings) -> EngineSpec:
    from ocrvault.engines.tesseract import library_version  # libtesseract, no model

    return EngineSpec(EngineInfo(name="tesseract", version=library_version()),
                      installed_languages(find_tessdata(settings.tessdata_dir)))


register("tesseract", _tesseract, _tesseract_spec)


def _rapidocr(settings: Settings) -> OcrEngine:
    from ocrvault.engines.rapidocr import RapidOcrEngine

    return RapidOcrEngine(threads=settings.rapidocr_threads)


def _rapidocr_spec(settings: Settings) -> EngineSpec:
    return EngineSpec(EngineInfo(name=RAPIDOCR, version=rapidocr_version()), LANGUAGES)


register("rapidocr", _rapidocr, _rapidocr_spec)


def _spec_sources(settings: Settings) -> dict[str, Callable[[], EngineSpec]]:
    return {name: functools.partial(spec, settings) for name, spec in _specs.items()}


def catalog(settings: Settings) -> EngineCatalog:
    """Every registered engine (and ``auto``), each created when first asked for."""
    factories = {name: (lambda name=name: create(name, settings))
                 for name in _factories}
    return EngineCatalog(factories, settings.default_engine, _spec_sources(settings))


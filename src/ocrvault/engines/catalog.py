"""The engines one process may run, by the names a request chooses from, and ``auto``.

Each engine is created once per process, on first use, and shared by its threads, so a
worker that is never asked for RapidOCR never loads its models. ``auto`` reads each page
with the engine that reads it best, by the measured figures (README, bench/engines.py):

- Tesseract for any language outside RapidOCR's (its models keep the accents of German,
  French or Spanish that RapidOCR's recogniser does not have);
- else RapidOCR (receipts, photos and clean pages alike: it reads all of them at least
  as well), unless its detector's view says the page is not upright: most lines taller
  than wide (turned by 90 or 270 degrees), or a mean line confidence below 0.85 (the
  corpus reads at 0.93-0.99 upright, 0.70-0.77 upside down), or no text at all. Such a
  page is read again by Tesseract, which finds and undoes the page's orientation.

What an engine is (name, version, languages) is an :class:`EngineSpec`, known for the
built-in engines without creating them, so that checking a request's languages and listing
the engines loads none. :meth:`EngineCatalog.describing` gives a catalog that only
describes: it refuses to create an engine (an API node's, which never runs OCR).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PIL.Image import Image

from ocrvault.engines.alphabets import RAPIDOCR
from ocrvault.engines.base import OcrEngine, RecognizeOptions
from ocrvault.errors import ErrorCode, InputRejected, ProcessingError
from ocrvault.model import EngineInfo, Page

AUTO = "auto"
TESSERACT = "tesseract"


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """What an engine is, known without loading it: its name, version and languages."""

    info: EngineInfo
    languages: frozenset[str]

    @classmethod
    def of(cls, engine: OcrEngine) -> EngineSpec:
        return cls(engine.info, engine.languages())


def auto_info(tesseract: EngineInfo, rapidocr: EngineInfo) -> EngineInfo:
    """``auto``'s name and version: the versions of the engines it chooses between."""
    return EngineInfo(name=AUTO, version=f"{TESSERACT} {tesseract.version}; "
                      f"{RAPIDOCR} {rapidocr.version}")


# Below this mean line confidence a RapidOCR page is taken to be upside down.
_UPRIGHT_CONFIDENCE = 0.85


class AutoEngine:
    """Reads each page with RapidOCR when it reads the page's languages and the page is
    upright, else with Tesseract."""

    def __init__(self, tesseract: OcrEngine, rapidocr: OcrEngine) -> None:
        self._tesseract = tesseract
        self._rapidocr = rapidocr
        self._info = auto_info(tesseract.info, rapidocr.info)

    @property
    def info(self) -> EngineInfo:
        return self._info

    def languages(self) -> frozenset[str]:
        return self._tesseract.languages() | self._rapidocr.languages()

    def choose(self, options: RecognizeOptions) -> OcrEngine:
        if set(options.languages) <= self._rapidocr.languages():
            return self._rapidocr
        return self._tesseract

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        engine = self.choose(options)
        page = engine.recognize(image, options)
        if engine is self._rapidocr and options.detect_orientation and not upright(page):
            return self._tesseract.recognize(image, options)
        return page

    def close(self) -> None:
        """Nothing of its own: the catalog closes the engines it chooses from."""


def upright(page: Page) -> bool:
    """Whether a page read without turning it looks upright: text found, most lines wider
    than tall, read with confidence."""
    if not page.lines:
        return False
    tall = sum(1 for line in page.lines if _height(line.polygon) > _width(line.polygon))
    confidence = sum(line.confidence for line in page.lines) / len(page.lines)
    return 2 * tall <= len(page.lines) and confidence >= _UPRIGHT_CONFIDENCE


def _width(polygon: list[float]) -> float:
    return max(polygon[0::2]) - min(polygon[0::2])


def _height(polygon: list[float]) -> float:
    return max(polygon[1::2]) - min(polygon[1::2])


SpecSource = Callable[[], EngineSpec]


def _refuse() -> OcrEngine:
    raise ProcessingError(
        ErrorCode.ENGINE_UNAVAILABLE,
        "This node runs no OCR engine (it serves the API only): submit with POST /v1/read "
        "and poll the job; synchronous reads need a node of role 'all'.")


class EngineCatalog:
    """Engines by name, each created on first use; safe to share between threads.

    ``specs`` describes engines without creating them; an engine without one is described
    by creating it (a plugin, a test's fake).
    """

    def __init__(self, factories: Mapping[str, Callable[[], OcrEngine]], default: str,
                 specs: Mapping[str, SpecSource] | None = None) -> None:
        self._factories = dict(factories)
        self._sources = dict(specs or {})
        if TESSERACT in self._factories and RAPIDOCR in self._factories:
            self._factories[AUTO] = lambda: AutoEngine(self.get(TESSERACT), self.get(RAPIDOCR))
            self._sources[AUTO] = self._auto_spec
        if default not in self._factories:
            raise ValueError(f"default engine {default!r} is not one of {self.names}")
        self.default = default
        self._engines: dict[str, OcrEngine] = {}
        self._specs: dict[str, EngineSpec] = {}
        self._lock = threading.RLock()
        self.runs_engines = True

    @classmethod
    def of(cls, engine: OcrEngine) -> EngineCatalog:
        """Just ``engine``, under its own name and as the default (tests' fakes)."""
        return cls({engine.info.name: lambda: engine}, engine.info.name)

    def describing(self) -> EngineCatalog:
        """The same engines, described as here, in a catalog that refuses to create any
        (an API node's)."""
        names = [name for name in self.names if name != AUTO]
        catalog = EngineCatalog(dict.fromkeys(names, _refuse), self.default,
                                {name: functools.partial(self.spec, name) for name in names})
        catalog.runs_engines = False
        return catalog

    def ensure_runnable(self) -> None:
        """Raise ENGINE_UNAVAILABLE where this catalog only describes engines."""
        if not self.runs_engines:
            _refuse()

    @property
    def names(self) -> list[str]:
        return sorted(self._factories)

    def resolve(self, name: str | None) -> str:
        """``name``, or the default for None; an engine that is not here is refused."""
        name = name or self.default
        if name not in self._factories:
            raise InputRejected(
                ErrorCode.INVALID_PARAMETER,
                f"Unknown engine {name[:16]!r}; choose one of: {', '.join(self.names)}.")
        return name

    def get(self, name: str | None = None) -> OcrEngine:
        name = self.resolve(name)
        with self._lock:
            engine = self._engines.get(name)
            if engine is None:
                engine = self._engines[name] = self._factories[name]()
            return engine

    @property
    def created(self) -> list[str]:
        """The engines created so far (loaded, in memory)."""
        with self._lock:
            return sorted(self._engines)

    def spec(self, name: str | None = None) -> EngineSpec:
        """What engine ``name`` is; created only where nothing else describes it."""
        name = self.resolve(name)
        with self._lock:
            spec = self._specs.get(name)
            if spec is None:
                source = self._sources.get(name)
                spec = self._specs[name] = source() if source else EngineSpec.of(self.get(name))
            return spec

    def specs(self) -> list[EngineSpec]:
        """Every engine a request may name (``auto`` included), described."""
        return [self.spec(name) for name in self.names]

    def _auto_spec(self) -> EngineSpec:
        tesseract, rapidocr = self.spec(TESSERACT), self.spec(RAPIDOCR)
        return EngineSpec(auto_info(tesseract.info, rapidocr.info),
                          tesseract.languages | rapidocr.languages)

    def all_languages(self) -> frozenset[str]:
        return frozenset().union(*(spec.languages for spec in self.specs()))

    def check(self, name: str | None, languages: tuple[str, ...]) -> None:
        """Refuse ``languages`` that engine ``name`` cannot read, saying which engine can."""
        readable = self.spec(name).languages
        missing = [code for code in languages if code not in readable]
        if not missing:
            return
        readers = [other for other in self.names
                   if other != AUTO and set(missing) <= self.spec(other).languages]
        advice = f"; use engine={readers[0]} for {'+'.join(missing)}" if readers else ""
        raise InputRejected(
            ErrorCode.INVALID_PARAMETER,
            f"engine {self.resolve(name)} reads: {', '.join(sorted(readable))}{advice}.")

    def close(self) -> None:
        with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.close()

"""What this deployment can read: its OCR engines and their languages (GET /v1/engines,
GET /v1/languages). Read from the descriptions of the engines the pipeline offers (which
load no engine), so an engine added to the runtime is listed without a change here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ocrvault.engines.catalog import EngineSpec
from ocrvault.languages import language_name


@dataclass(frozen=True, slots=True)
class EngineDescription:
    name: str
    version: str
    languages: list[str]
    default: bool


@dataclass(frozen=True, slots=True)
class LanguageDescription:
    code: str
    name: str
    engines: list[str]  # the engines that read it


def describe_engines(engines: Sequence[EngineSpec], default: str) -> list[EngineDescription]:
    return sorted(
        (EngineDescription(name=e.info.name, version=e.info.version,
                           languages=sorted(e.languages), default=e.info.name == default)
         for e in engines),
        key=lambda d: d.name,
    )


def describe_languages(engines: Sequence[EngineSpec]) -> list[LanguageDescription]:
    readers: dict[str, list[str]] = {}
    for engine in sorted(engines, key=lambda e: e.info.name):
        for code in engine.languages:
            readers.setdefault(code, []).append(engine.info.name)
    return [LanguageDescription(code=code, name=language_name(code), engines=names)
            for code, names in sorted(readers.items())]

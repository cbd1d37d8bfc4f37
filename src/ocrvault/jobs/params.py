"""What a caller may ask of a read: parsed and validated before anything is stored."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.model import OutputFormat

_LANGUAGE = re.compile(r"^[a-z]{3}(_[a-z]+)?$")


@dataclass(frozen=True, slots=True)
class ReadParams:
    languages: tuple[str, ...] = ("eng",)
    pages: str | None = None
    outputs: tuple[OutputFormat, ...] = ()

    @classmethod
    def parse(cls, languages: str | None, pages: str | None, outputs: str | None,
              available: frozenset[str], default_languages: str = "eng") -> ReadParams:
        return cls(
            languages=_parse_languages(languages or default_languages, available),
            pages=pages.strip() if pages and pages.strip() else None,
            outputs=_parse_outputs(outputs),
        )


def _parse_languages(spec: str, available: frozenset[str]) -> tuple[str, ...]:
    codes = tuple(dict.fromkeys(code.strip() for code in spec.split("+")))
    for code in codes:
        if not _LANGUAGE.fullmatch(code) or code not in available:
            raise InputRejected(
                ErrorCode.INVALID_PARAMETER,
                f"Unknown language {code[:16]!r}; installed: {'+'.join(sorted(available))}.",
            )
    return codes


def _parse_outputs(spec: str | None) -> tuple[OutputFormat, ...]:
    if not spec:
        return ()
    allowed = ", ".join(f.value for f in OutputFormat)
    formats = []
    for name in (part.strip() for part in spec.split(",")):
        try:
            formats.append(OutputFormat(name))
        except ValueError:
            raise InputRejected(
                ErrorCode.INVALID_PARAMETER, f"Unknown output {name[:16]!r}; allowed: {allowed}."
            ) from None
    return tuple(dict.fromkeys(formats))

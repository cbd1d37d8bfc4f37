"""What a caller may ask of a read: parsed and validated before anything is stored."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TypeVar

from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.ingest.pages import parse_page_ranges
from ocrvault.ingest.types import PdfText
from ocrvault.model import OutputFormat
from ocrvault.render import PdfProfile

_LANGUAGE = re.compile(r"^[a-z]{3}(_[a-z]+)?$")
# '+' is Tesseract's separator, but in a query string it arrives as a space; ',' needs no
# escaping anywhere. All three (and runs of them) separate codes alike.
_LANGUAGE_SEPARATORS = re.compile(r"[+,\s]+")
_Choice = TypeVar("_Choice", bound=StrEnum)
MAX_PDF_PASSWORD_CHARS = 256  # PDF passwords are at most 127 bytes (AES-256) or 32 (RC4/AES-128)


@dataclass(frozen=True, slots=True)
class ReadParams:
    languages: tuple[str, ...] = ("eng",)
    pages: str | None = None
    outputs: tuple[OutputFormat, ...] = ()
    # The engine the request named; None reads with the deployment's default.
    engine: str | None = None
    # A secret: out of repr (so out of logs and tracebacks), stored only sealed.
    pdf_password: str | None = field(default=None, repr=False)
    pdf_text: PdfText = PdfText.AUTO
    pdf_profile: PdfProfile = PdfProfile.DEFAULT

    @classmethod
    def parse(cls, languages: str | None, pages: str | None, outputs: str | None,
              available: frozenset[str], default_languages: str = "eng",
              pdf_password: str | None = None, engine: str | None = None, *,
              pdf_text: str | None = None, pdf_profile: str | None = None) -> ReadParams:
        return cls(
            engine=engine,
            languages=_parse_languages(languages or default_languages, available),
            pages=_check_pages(pages),
            outputs=_parse_outputs(outputs),
            pdf_password=_check_pdf_password(pdf_password),
            pdf_text=_choice(PdfText, "pdf_text", pdf_text, PdfText.AUTO),
            pdf_profile=_choice(PdfProfile, "pdf_profile", pdf_profile, PdfProfile.DEFAULT),
        )

    def options(self) -> bytes | None:
        """The reading and rendering options a worker needs, as stored beside the input
        (sealed); None when they are all the defaults."""
        chosen = {name: value for name, value, default in (
            ("pdf_text", self.pdf_text, PdfText.AUTO),
            ("pdf_profile", self.pdf_profile, PdfProfile.DEFAULT)) if value is not default}
        return json.dumps(chosen).encode("ascii") if chosen else None

    def with_options(self, stored: str | None) -> ReadParams:
        """These parameters with the options :meth:`options` stored, if any."""
        if stored is None:
            return self
        chosen = json.loads(stored)
        return replace(self, pdf_text=PdfText(chosen.get("pdf_text", PdfText.AUTO)),
                       pdf_profile=PdfProfile(chosen.get("pdf_profile", PdfProfile.DEFAULT)))


def _choice(kind: type[_Choice], name: str, value: str | None, default: _Choice) -> _Choice:
    if value is None or not value.strip():
        return default
    try:
        return kind(value.strip())
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InputRejected(ErrorCode.INVALID_PARAMETER,
                            f"{name} must be one of {allowed}; got {value[:16]!r}.") from None


def _check_pages(spec: str | None) -> str | None:
    """The selection, its shape and bounds checked now, before the upload is read; whether
    its pages exist is known only once the file is inspected."""
    if spec is None or not spec.strip():
        return None
    parse_page_ranges(spec)
    return spec.strip()


def _check_pdf_password(password: str | None) -> str | None:
    """The password as given (an empty one is a real PDF password); never echoed in errors."""
    if password is None:
        return None
    if len(password) > MAX_PDF_PASSWORD_CHARS or "\x00" in password:
        raise InputRejected(
            ErrorCode.INVALID_PARAMETER,
            f"pdf_password must be at most {MAX_PDF_PASSWORD_CHARS} characters, without NUL.",
        )
    return password


def split_languages(spec: str) -> tuple[str, ...]:
    """The codes of ``'eng+deu'``, ``'eng deu'`` or ``'eng,deu'``, in order, each once."""
    return tuple(dict.fromkeys(code for code in _LANGUAGE_SEPARATORS.split(spec) if code))


def _parse_languages(spec: str, available: frozenset[str]) -> tuple[str, ...]:
    codes = split_languages(spec)
    if not codes:
        raise InputRejected(ErrorCode.INVALID_PARAMETER,
                            f"languages is empty; give codes like {_example(available)}.")
    for code in codes:
        if not _LANGUAGE.fullmatch(code) or code not in available:
            raise InputRejected(
                ErrorCode.INVALID_PARAMETER,
                f"Unknown language {code[:16]!r}; installed: {', '.join(sorted(available))}. "
                f"Join several with ',' or '+', e.g. languages={_example(available)}.",
            )
    return codes


def _example(available: frozenset[str]) -> str:
    """A value that works in a URL as written: ',' needs no escaping, '+' would."""
    return ",".join(sorted(available - {"osd"})[:2]) or "eng"


def _parse_outputs(spec: str | None) -> tuple[OutputFormat, ...]:
    """The outputs to render and keep; ``json`` is accepted and left out, since the result
    (the JSON) is always kept."""
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
    return tuple(f for f in dict.fromkeys(formats) if f is not OutputFormat.JSON)

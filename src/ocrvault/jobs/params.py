"""What a caller may ask of a read: parsed and validated before anything is stored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.ingest.pages import parse_page_ranges
from ocrvault.model import OutputFormat

_LANGUAGE = re.compile(r"^[a-z]{3}(_[a-z]+)?$")
# '+' is Tesseract's separator, but in a query string it arrives as a space; ',' needs no
# escaping anywhere. All three (and runs of them) separate codes alike.
_LANGUAGE_SEPARATORS = re.compile(r"[+,\s]+")
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

    @classmethod
    def parse(cls, languages: str | None, pages: str | None, outputs: str | None,
              available: frozenset[str], default_languages: str = "eng",
              pdf_password: str | None = None, engine: str | None = None) -> ReadParams:
        return cls(
            engine=engine,
            languages=_parse_languages(languages or default_languages, available),
            pages=_check_pages(pages),
            outputs=_parse_outputs(outputs),
            pdf_password=_check_pdf_password(pdf_password),
        )


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

"""What a renderer is: one output format, drawn from a job's result (and, for some, its input).

A renderer is one module in ``ocrvault.render`` that defines ``RENDERER``; the registry
(:mod:`ocrvault.render.registry`) finds it, so a new format is that module and its
:class:`~ocrvault.model.OutputFormat` member, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from ocrvault.ingest.types import FileFormat, Limits
from ocrvault.model import Document, OutputFormat, Page


class PdfProfile(StrEnum):
    """What flavour of PDF the searchable-PDF renderer writes."""

    DEFAULT = "default"
    PDFA_2B = "pdfa-2b"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """The file a job was submitted with, for renderers that draw it (the searchable PDF).

    Untrusted bytes: a renderer that reads them (``reads_input``) runs in the decode
    sandbox, never in the worker's own process.
    """

    data: bytes = field(repr=False)
    format: FileFormat
    pages: tuple[int, ...]  # 1-based, the pages the result holds, in its order
    limits: Limits  # what decoding the input again may cost (ingest's limits)
    pdf_password: str | None = field(default=None, repr=False)
    pdf_profile: PdfProfile = PdfProfile.DEFAULT


class Renderer(Protocol):
    """One output format.

    ``render`` returns the output's bytes; it raises :class:`~ocrvault.errors.OcrVaultError`
    (``InputRejected`` for a source it cannot draw) and nothing else on purpose.
    """

    @property
    def format(self) -> OutputFormat: ...

    @property
    def reads_input(self) -> bool:
        """True when ``render`` parses ``source`` (hostile bytes): the caller runs it in
        the decode sandbox and passes the source; otherwise ``source`` is None."""
        ...

    @property
    def view_of_result(self) -> bool:
        """True when the output is only another spelling of the stored result (json, text):
        it is served from the result whether or not it was asked for at submission. Every
        other output exists only if it was requested (``409 output_not_requested``)."""
        ...

    def reads_lines(self, page: Page) -> bool:
        """Whether ``render`` reads ``page``'s lines. A renderer that reads the input is
        sent the document without the lines it does not read: a born-digital page's words,
        which the searchable PDF keeps as the PDF has them, were most of what crossed."""
        ...

    def render(self, document: Document, source: SourceFile | None) -> bytes: ...


@dataclass(frozen=True, slots=True)
class DocumentRenderer:
    """A renderer that needs the result only: a pure function of the Document."""

    format: OutputFormat
    draw: _Draw
    view_of_result: bool = False
    reads_input: bool = False

    def reads_lines(self, page: Page) -> bool:
        return True

    def render(self, document: Document, source: SourceFile | None) -> bytes:
        return self.draw(document)


class _Draw(Protocol):
    def __call__(self, document: Document, /) -> bytes: ...

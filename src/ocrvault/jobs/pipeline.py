"""Bytes in, Document out: inspect, decode in the sandbox, OCR page by page.

The pipeline holds at most one decoded page at a time, so a long PDF costs the
memory of its largest page, not of the whole document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ocrvault.engines.base import OcrEngine, RecognizeOptions
from ocrvault.engines.catalog import EngineCatalog
from ocrvault.engines.layout import order_page
from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.ingest import DecodedPage, ExtractedPage, Ingestor
from ocrvault.ingest.pages import missing_pages, parse_page_selection
from ocrvault.ingest.types import FileFormat
from ocrvault.jobs.params import ReadParams
from ocrvault.model import Document, OutputFormat, Page
from ocrvault.render import PdfProfile, SourceFile, default_registry, render_isolated

PageProgress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class CheckedInput:
    """What decoding needs of a file that passed :meth:`OcrPipeline.check`; a worker
    rebuilds it from the job row instead of inspecting the file again."""

    format: FileFormat
    pages: list[int]
    requested: str | None = None  # the selection as asked
    missing: str | None = None  # what it asked for beyond the last page (ingest/pages.py)


class OcrPipeline:
    def __init__(self, ingestor: Ingestor, engines: EngineCatalog) -> None:
        self.ingestor = ingestor
        self.engines = engines

    @property
    def engine(self) -> OcrEngine:
        """The deployment's default engine."""
        return self.engines.get()

    def params(self, languages: str | None, pages: str | None, outputs: str | None,
               default_languages: str = "eng", pdf_password: str | None = None,
               engine: str | None = None, *, pdf_text: str | None = None,
               pdf_profile: str | None = None) -> ReadParams:
        """A request's parameters, checked against the engines here: an engine that
        cannot read a language asked for is refused, never replaced by another."""
        name = self.engines.resolve(engine)
        params = ReadParams.parse(languages, pages, outputs, self.engines.all_languages(),
                                  default_languages, pdf_password, engine=engine and name,
                                  pdf_text=pdf_text, pdf_profile=pdf_profile)
        self.engines.check(name, params.languages)
        return params

    def check(self, data: bytes, params: ReadParams) -> CheckedInput:
        """Every check that can reject a file before it is stored or decoded in full."""
        info = self.ingestor.inspect(data, params.pdf_password)
        if params.pdf_profile is PdfProfile.PDFA_2B and info.format is FileFormat.PDF:
            raise InputRejected(
                ErrorCode.INVALID_PARAMETER,
                "pdf_profile=pdfa-2b is offered for image input: a PDF's own pages are kept "
                "as they are (fonts, colours), which PDF/A may not allow. Leave it out.")
        return CheckedInput(info.format, parse_page_selection(params.pages, info.page_count),
                            params.pages, missing_pages(params.pages, info.page_count))

    @staticmethod
    def _recognize(engine: OcrEngine, decoded: DecodedPage, params: ReadParams) -> Page:
        options = RecognizeOptions(languages=params.languages, page_number=decoded.number)
        try:
            # Whatever the engine, its lines are put in reading order (columns, rows).
            page = order_page(engine.recognize(decoded.image, options))
        finally:
            decoded.image.close()
        # Engines that do not say which engine read the page (fakes, plugins) are it.
        return page if page.engine else page.model_copy(update={"engine": engine.info.name})

    def render(self, document: Document, data: bytes, checked: CheckedInput, params: ReadParams,
               fmt: OutputFormat) -> bytes:
        """Output ``fmt`` of ``document``; a renderer that draws the input (the searchable
        PDF) parses it, so it runs in the decode sandbox like decoding does."""
        renderer = default_registry().get(fmt)
        if not renderer.reads_input:
            return renderer.render(document, None)
        source = SourceFile(data, checked.format, tuple(checked.pages), self.ingestor.limits,
                            params.pdf_password, params.pdf_profile)
        return self.ingestor.sandbox.call(render_isolated, fmt, document, source)

    def run(self, data: bytes, checked: CheckedInput, params: ReadParams,
            on_page: PageProgress | None = None) -> Document:
        pages: list[Page] = []
        removed: set[str] = set()
        engine = self.engines.get(params.engine)
        decoded_pages = self.ingestor.decode(data, checked.format, checked.pages,
                                             params.pdf_password, params.pdf_text)
        for index, decoded in enumerate(decoded_pages):
            removed |= decoded.metadata_removed
            if isinstance(decoded, ExtractedPage):  # a born-digital page: its own text
                pages.append(order_page(decoded.page))
            else:
                pages.append(self._recognize(engine, decoded, params))
            if on_page is not None:
                on_page(index + 1, len(checked.pages))
        document = Document.from_pages(pages, engine.info, list(params.languages),
                                       sorted(removed))
        return document.model_copy(update={"pages_requested": checked.requested,
                                           "pages_missing": checked.missing})

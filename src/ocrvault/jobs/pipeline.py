"""Bytes in, Document out: inspect, decode in the sandbox, OCR page by page.

A document is read through a :class:`DocumentReader`: ``read(index)`` decodes that one
page (in a sandbox child, which keeps the file between pages) and recognises it, on
whatever thread calls it, in any order; ``assemble`` puts the pages together. So the
pages of one job can run on every worker at once (jobs/pages.py), and a reader holds no
decoded page beyond the one each caller is reading: a long PDF costs the memory of its
largest page per worker, not of the whole document.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from ocrvault.engines.base import OcrEngine, RecognizeOptions, reads_grey
from ocrvault.engines.catalog import EngineCatalog
from ocrvault.engines.layout import order_page
from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.ingest import DecodedPage, ExtractedPage, Ingestor
from ocrvault.ingest.pages import missing_pages, parse_page_selection
from ocrvault.ingest.types import FileFormat
from ocrvault.jobs.params import ReadParams
from ocrvault.model import Document, OutputFormat, Page
from ocrvault.render import PdfProfile, SourceFile, default_registry, render_isolated
from ocrvault.telemetry import metrics, tracing

PageProgress = Callable[[int, int], None]
_WARM_PAGE_SIZE = (64, 32)


@dataclass(frozen=True, slots=True)
class CheckedInput:
    """What decoding needs of a file that passed :meth:`OcrPipeline.check`; a worker
    rebuilds it from the job row instead of inspecting the file again."""

    format: FileFormat
    pages: list[int]
    requested: str | None = None  # the selection as asked
    missing: str | None = None  # what it asked for beyond the last page (ingest/pages.py)


class OcrPipeline:
    def __init__(self, ingestor: Ingestor, engines: EngineCatalog,
                 page_timeout: float | None = None) -> None:
        self.ingestor = ingestor
        self.engines = engines
        self.page_timeout = page_timeout  # seconds an engine may spend on one page

    @property
    def engine(self) -> OcrEngine:
        """The deployment's default engine."""
        return self.engines.get()

    def warm_engine(self) -> None:
        """Read a blank page with the default engine on this thread, which loads what the
        engine keeps per thread (Tesseract's API)."""
        blank = Image.new("L", _WARM_PAGE_SIZE, "white")
        self.engine.recognize(blank, RecognizeOptions())

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

    def render(self, document: Document, data: bytes, checked: CheckedInput, params: ReadParams,
               fmt: OutputFormat) -> bytes:
        """Output ``fmt`` of ``document``; a renderer that draws the input (the searchable
        PDF) parses it, so it runs in the decode sandbox like decoding does."""
        renderer = default_registry().get(fmt)
        if not renderer.reads_input:
            return renderer.render(document, None)
        source = SourceFile(data, checked.format, tuple(checked.pages), self.ingestor.limits,
                            params.pdf_password, params.pdf_profile)
        sent = document.model_copy(update={"pages": [
            page if renderer.reads_lines(page) else page.model_copy(update={"lines": []})
            for page in document.pages]})
        return self.ingestor.sandbox.call(render_isolated, fmt, sent.model_dump_json().encode(),
                                         source)

    def open(self, data: bytes, checked: CheckedInput, params: ReadParams,
             key: str | None = None) -> DocumentReader:
        """``data`` ready to be read page by page; ``key`` names it in the decode sandbox
        (a job's id; a fresh one by default). Close the reader when done."""
        return DocumentReader(self, data, checked, params, key or uuid.uuid4().hex)

    def run(self, data: bytes, checked: CheckedInput, params: ReadParams,
            on_page: PageProgress | None = None) -> Document:
        """Read every page in order on the calling thread (sync reads, the CLI)."""
        with self.open(data, checked, params) as reader:
            results = []
            for index in range(reader.count):
                results.append(reader.read(index))
                if on_page is not None:
                    on_page(index + 1, reader.count)
            return reader.assemble(results)


@dataclass(frozen=True, slots=True)
class PageResult:
    """One page read: what the engine saw (or the PDF's own text said), and the metadata
    its decoding dropped."""

    page: Page
    metadata_removed: frozenset[str]


def recognize(engine: OcrEngine, decoded: DecodedPage, params: ReadParams,
              timeout: float | None = None) -> Page:
    """``decoded`` read by ``engine`` within ``timeout`` seconds, its lines in reading
    order (columns, rows)."""
    options = RecognizeOptions(languages=params.languages, page_number=decoded.number,
                               timeout_seconds=timeout)
    try:
        with metrics.page_read(engine.info.name), tracing.span(
                "recognise", engine=engine.info.name, page=decoded.number):
            page = order_page(engine.recognize(decoded.image, options))
    finally:
        decoded.image.close()
    # Engines that do not say which engine read the page (fakes, plugins) are it; the
    # size of a PDF page in points is known here, not to the engine.
    return page.model_copy(update={"engine": page.engine or engine.info.name,
                                   "size_pt": decoded.size_pt})


class DocumentReader:
    """One document, read a page at a time by any number of threads (each page once)."""

    def __init__(self, pipeline: OcrPipeline, data: bytes, checked: CheckedInput,
                 params: ReadParams, key: str) -> None:
        self._ingestor = pipeline.ingestor
        self._engine = pipeline.engines.get(params.engine)
        self._grey = reads_grey(self._engine)
        self._timeout = pipeline.page_timeout
        self._data = data
        self._checked = checked
        self._params = params
        # A one-page file is not kept in a child: there is no next page to save a copy for.
        self._key = key if len(checked.pages) > 1 else None
        # One decode timeout for the whole file, as when it was decoded in one stream:
        # reading it page by page must not give a hostile file a timeout per page.
        self._budget = pipeline.ingestor.budget()

    @property
    def count(self) -> int:
        return len(self._checked.pages)

    def read(self, index: int) -> PageResult:
        """Decode and read the ``index``-th selected page (0-based): from its own text
        layer where ``pdf_text`` lets it (a born-digital PDF page), else by the engine."""
        number = self._checked.pages[index]
        with tracing.span("decode", page=number):
            decoded = self._ingestor.decode_page(self._key, self._data, self._checked.format,
                                                 number, self._params.pdf_password,
                                                 self._budget, self._params.pdf_text,
                                                 grey=self._grey)
        if isinstance(decoded, ExtractedPage):
            page = order_page(decoded.page)
        else:
            page = recognize(self._engine, decoded, self._params, self._timeout)
        return PageResult(page, frozenset(decoded.metadata_removed))


    def assemble(self, results: Sequence[PageResult]) -> Document:
        """The document of every page's result, in page order."""
        removed = set().union(*(result.metadata_removed for result in results))
        document = Document.from_pages([result.page for result in results], self._engine.info,
                                       list(self._params.languages), sorted(removed))
        return document.model_copy(update={"pages_requested": self._checked.requested,
                                           "pages_missing": self._checked.missing})

    def close(self) -> None:
        """Drop the document from the decode children that kept it."""
        if self._key is not None:
            self._ingestor.forget(self._key)

    def __enter__(self) -> DocumentReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

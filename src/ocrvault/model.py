"""The shapes ocrvault speaks in: the OCR result and the job.

Document > Page > Line > Word, each with text, an 8-number polygon (x1,y1 .. x4,y4,
clockwise from top-left, in page pixels) and a confidence in 0..1. These models are
the native API's RESULT schema as well, so the OpenAPI document shows them as-is.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Polygon = list[float]

FORM_FEED = "\f"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Word(_Frozen):
    text: str
    polygon: Polygon = Field(min_length=8, max_length=8)
    confidence: float = Field(ge=0.0, le=1.0)


class Line(_Frozen):
    text: str
    polygon: Polygon = Field(min_length=8, max_length=8)
    confidence: float = Field(ge=0.0, le=1.0)
    words: list[Word]


class PageSource(StrEnum):
    OCR = "ocr"
    # Read from a born-digital PDF page's own text layer, without OCR (ingest/pdftext.py).
    EXTRACTED = "extracted"


class Page(_Frozen):
    number: int = Field(ge=1)
    width: int
    height: int
    unit: Literal["pixel"] = "pixel"
    angle: float = Field(description="Clockwise rotation in degrees that was undone before OCR")
    source: PageSource = Field(
        default=PageSource.OCR,
        description="'ocr', or 'extracted' when a PDF page's own text layer was read",
    )
    engine: str | None = Field(
        default=None, description="The OCR engine that read this page ('tesseract', "
        "'rapidocr'); null for a page whose text was extracted")
    lines: list[Line]

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


class EngineInfo(_Frozen):
    name: str
    version: str


class DeclaredTypeMismatch(_Frozen):
    """The client named one media type and the bytes are another; the bytes were believed."""

    declared: str = Field(description="The Content-Type sent with the file (type/subtype only)")
    detected: str = Field(description="The media type its content has, which was processed")


class Document(_Frozen):
    """The RESULT of a job: every page, the plain text, and what produced it."""

    pages: list[Page]
    text: str = Field(description="All text; lines joined by newline, pages by form feed")
    engine: EngineInfo
    languages: list[str]
    metadata_removed: list[str] = Field(
        default_factory=list,
        description="Kinds of embedded metadata (exif, xmp, icc, ...) that were dropped",
    )
    declared_type_mismatch: DeclaredTypeMismatch | None = Field(
        default=None,
        description="Set when the declared Content-Type contradicts the file's content",
    )
    pages_requested: str | None = Field(
        default=None, description="The 'pages' selection as the request gave it, if any")
    region: str | None = Field(
        default=None, description="The region whose deployment processed the job "
        "(OCRVAULT_REGION); null where none is set")
    pages_missing: str | None = Field(
        default=None,
        description="Pages of the selection beyond the document's last page, as ranges "
        "('2-3'); they were skipped. Null when every selected page exists",
    )

    @classmethod
    def from_pages(
        cls,
        pages: list[Page],
        engine: EngineInfo,
        languages: list[str],
        metadata_removed: list[str] | None = None,
    ) -> Document:
        return cls(
            pages=pages,
            text=FORM_FEED.join(page.text for page in pages),
            engine=engine,
            languages=languages,
            metadata_removed=sorted(set(metadata_removed or [])),
        )


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DELETED = "deleted"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class OutputFormat(StrEnum):
    """What ``GET /v1/jobs/{id}/outputs/{fmt}`` answers; each has a renderer in ``render/``."""

    JSON = "json"
    TEXT = "text"
    HOCR = "hocr"
    ALTO = "alto"
    PDF = "pdf"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {
    OutputFormat.JSON: "application/json",
    OutputFormat.TEXT: "text/plain; charset=utf-8",
    OutputFormat.HOCR: "application/xhtml+xml; charset=utf-8",
    OutputFormat.ALTO: "application/xml; charset=utf-8",
    OutputFormat.PDF: "application/pdf",
}


class JobError(_Frozen):
    code: str
    detail: str


class PartExpiries(_Frozen):
    """When each part of a job is deleted under its retention policy."""

    input: datetime | None
    result: datetime | None
    outputs: datetime | None
    job_metadata: datetime | None


class Job(_Frozen):
    """A job as its owner sees it (never holds the input)."""

    id: str
    tenant_id: str
    status: JobStatus
    created_at: datetime
    completed_at: datetime | None
    expires_at: datetime | None
    languages: list[str]
    outputs: list[OutputFormat]
    page_count: int | None
    pages_done: int = 0
    error: JobError | None
    expires: PartExpiries
    expired: list[str] = Field(description="Parts already deleted by retention")


class DeletionReceipt(_Frozen):
    id: str
    deleted_at: datetime
    deleted: list[str]

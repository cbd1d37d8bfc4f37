"""Shapes that cross the ingest boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from PIL.Image import Image

if TYPE_CHECKING:  # not at run time: the decode children do without pydantic (see sandbox.py)
    from ocrvault.config import Settings
    from ocrvault.model import Page


class FileFormat(StrEnum):
    PNG = "png"
    JPEG = "jpeg"
    BMP = "bmp"
    TIFF = "tiff"
    WEBP = "webp"
    PDF = "pdf"

    @property
    def media_type(self) -> str:
        return "application/pdf" if self is FileFormat.PDF else f"image/{self.value}"


class PdfText(StrEnum):
    """Where a PDF page's text comes from (``pdf_text=``; see ingest/pdftext.py)."""

    AUTO = "auto"  # the page's own text layer where it is real, OCR elsewhere
    OCR = "ocr"  # OCR every page, whatever text it carries
    EXTRACT = "extract"  # the text layer wherever a page has one, even one auto distrusts


@dataclass(frozen=True, slots=True)
class Limits:
    max_file_bytes: int
    max_pages: int
    max_page_pixels: int
    max_side_px: int
    # PDF pages render at this resolution, or at their covering image's (ingest/inspect.py);
    # a poster is refused by the pixels it renders to, whatever its inches.
    pdf_dpi: int = 300

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_file_bytes=settings.max_file_bytes,
            max_pages=settings.max_pages,
            max_page_pixels=settings.max_page_pixels,
            max_side_px=settings.max_side_px,
            pdf_dpi=settings.pdf_dpi,
        )


@dataclass(frozen=True, slots=True)
class InputInfo:
    """What the header-level inspection learned, before any full decode."""

    format: FileFormat
    page_count: int
    size_bytes: int


@dataclass(slots=True)
class DecodedPage:
    number: int  # 1-based page number in the source document
    image: Image  # metadata already stripped; mode L or RGB
    metadata_removed: set[str] = field(default_factory=set)
    size_pt: tuple[float, float] | None = None  # a PDF page's size in points; None: an image


@dataclass(slots=True)
class ExtractedPage:
    """A PDF page read from its own text layer (ingest/pdftext.py), not rendered."""

    page: Page  # source "extracted", confidence 1.0
    metadata_removed: set[str] = field(default_factory=set)

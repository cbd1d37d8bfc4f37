"""Shapes that cross the ingest boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from PIL.Image import Image


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


@dataclass(frozen=True, slots=True)
class Limits:
    max_file_bytes: int
    max_pages: int
    max_page_pixels: int
    max_side_px: int
    pdf_dpi: int = 300


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

"""Decide a file's format from its leading bytes, against an allow-list.

Names and declared content types are never consulted: they are whatever the
sender wants them to be. The first bytes decide ("leading magic wins"), so a
PNG with a PDF appended is a PNG and the appended PDF is never parsed. PDF is
the one exception to "offset 0": readers accept ``%PDF-`` anywhere in the first
1024 bytes, and so do we, unless the file starts with another format's signature.
"""

from __future__ import annotations

import codecs

from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.ingest.types import FileFormat

ACCEPTED = "PNG, JPEG, BMP, TIFF, WebP or PDF"

_PDF_MAGIC = b"%PDF-"
_PDF_SEARCH_BYTES = 1024

_MAGIC: tuple[tuple[bytes, FileFormat], ...] = (
    (b"\x89PNG\r\n\x1a\n", FileFormat.PNG),
    (b"\xff\xd8\xff", FileFormat.JPEG),
    (b"II*\x00", FileFormat.TIFF),
    (b"MM\x00*", FileFormat.TIFF),
    (b"II+\x00", FileFormat.TIFF),  # BigTIFF
    (b"MM\x00+", FileFormat.TIFF),  # BigTIFF
    (_PDF_MAGIC, FileFormat.PDF),
)

# "BM" alone is too weak (any text may start with it): also require a known DIB header size.
_BMP_DIB_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})

# Formats people send by mistake or on purpose, named so the caller knows what went wrong.
_FOREIGN: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (or an Office/OpenDocument file)"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Microsoft Office document"),
    (b"{\\rtf", "an RTF document"),
    (b"%!PS", "a PostScript file"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
    (b"\x7fELF", "an executable program"),
    (b"MZ", "a Windows executable"),
    (b"push graphic-context", "an ImageMagick MVG script"),
    (b"RIFF", "a RIFF file (audio or video, not WebP)"),
)


def sniff(data: bytes) -> FileFormat:
    """The format of ``data`` by magic bytes; raise ``InputRejected`` for anything else."""
    if not data:
        raise InputRejected(ErrorCode.EMPTY_FILE, "The file is empty (0 bytes).")
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return FileFormat.WEBP
    if data.startswith(b"BM") and int.from_bytes(data[14:18], "little") in _BMP_DIB_HEADER_SIZES:
        return FileFormat.BMP
    foreign = _foreign_magic(data)
    if foreign is None and _PDF_MAGIC in data[:_PDF_SEARCH_BYTES]:
        return FileFormat.PDF
    what = foreign or _guess_text(data)
    opening = f"The file looks like {what}, which" if what else "The file is in a format that"
    raise InputRejected(
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        f"{opening} ocrvault does not read (judged by its content, not its name or "
        f"Content-Type). Send {ACCEPTED}.",
    )


def _foreign_magic(data: bytes) -> str | None:
    """The name of a format that is not accepted, when its signature leads the file."""
    for magic, name in _FOREIGN:
        if data.startswith(magic):
            return name
    return "an ISO media file (HEIC, AVIF or MP4)" if data[4:8] == b"ftyp" else None


def _guess_text(data: bytes) -> str | None:
    """Name markup and text, which have no signature; only used to word the rejection."""
    head = data[:_PDF_SEARCH_BYTES].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if head.startswith(b"<"):
        if b"<svg" in head:
            return "an SVG image"
        return "an XML document" if head.startswith(b"<?xml") else "an HTML document"
    try:  # incremental: a multi-byte character cut at the end of the head is fine
        text = codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        return None
    return "plain text" if all(ch.isprintable() or ch in "\t\r\n" for ch in text) else None

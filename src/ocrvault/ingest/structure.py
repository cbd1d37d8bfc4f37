"""Header sanity, read from the bytes themselves before any decoder sees them.

Pillow trusts some headers in ways that turn damage into the wrong answer: it reads a
BMP width unsigned (so -1 px becomes 4,294,967,295 px, refused as "too large, scale it
down"), and it ends a TIFF whose chain of IFDs (one per page) loops at the first
repeated IFD, so a loop reads as a shorter document. Here such a file is what it is:
damaged, ``corrupt_file``, with advice that fits. Pure byte parsing: no native code.
"""

from __future__ import annotations

import struct

from ocrvault.errors import ErrorCode, InputRejected

RESAVE = "Re-save it from an image editor or scanner software, and send it again."


def tiff_page_count(data: bytes, max_pages: int) -> int:
    """The number of IFDs (pages) in the main chain, walked without decoding; at most
    ``max_pages + 1``, where the walk stops (the caller refuses the count).

    Raises ``corrupt_file`` when the chain loops or an IFD lies outside the file.
    """
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")  # BigTIFF: 64-bit offsets and counts
    count_format, entry_size, offset_format = ("Q", 20, "Q") if big else ("H", 12, "I")
    offset = _unpack(data, order + offset_format, 8 if big else 4, "TIFF", "its first page")
    seen: set[int] = set()
    while offset and len(seen) <= max_pages:
        if offset in seen:
            raise _corrupt("TIFF", "its chain of pages loops back on itself")
        seen.add(offset)
        entries = _unpack(data, order + count_format, offset, "TIFF", f"page {len(seen)}")
        next_at = offset + struct.calcsize(count_format) + entries * entry_size
        offset = _unpack(data, order + offset_format, next_at, "TIFF", f"page {len(seen)}")
    if not seen:
        raise _corrupt("TIFF", "it has no page")
    return len(seen)


def bmp_size(data: bytes) -> tuple[int, int]:
    """Width and height a BMP declares; a negative height (rows stored top-down) is legal
    and given as its size. Raises ``corrupt_file`` for a width or height that is no size."""
    header_size = _unpack(data, "<I", 14, "BMP", "its header")
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: unsigned 16-bit sides
        width, height = (_unpack(data, "<H", at, "BMP", "its header") for at in (18, 20))
    else:  # every later header: signed 32-bit sides
        width, height = (_unpack(data, "<i", at, "BMP", "its header") for at in (18, 22))
    if width < 1 or height == 0:
        raise _corrupt("BMP", f"its header declares {width} x {height} px")
    return width, abs(height)


def _unpack(data: bytes, fmt: str, at: int, kind: str, what: str) -> int:
    if at + struct.calcsize(fmt) > len(data):
        raise _corrupt(kind, f"it ends inside {what}")
    value: int = struct.unpack_from(fmt, data, at)[0]
    return value


def _corrupt(kind: str, reason: str) -> InputRejected:
    return InputRejected(ErrorCode.CORRUPT_FILE, f"The {kind} is damaged: {reason}. {RESAVE}")

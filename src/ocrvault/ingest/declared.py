"""The media type a client declares for its file: normalised, compared, never trusted.

The format is always decided by :func:`~ocrvault.ingest.sniff.sniff` from the bytes. What
the client said (the request's or the multipart part's ``Content-Type``) only serves to
tell it, in the result, that the two disagree. The declared value is reduced to a bare
``type/subtype`` of token characters, so no file name, parameter or other free text that
a client might put in the header is ever kept or echoed.
"""

from __future__ import annotations

import re

from ocrvault.ingest.types import FileFormat

_MAX_LENGTH = 100
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")

# Types that say "some bytes" rather than naming a format: nothing to contradict. curl
# sends form-urlencoded for any --data-binary without -H Content-Type, so it names nothing.
_GENERIC = frozenset({
    "application/octet-stream", "binary/octet-stream", "application/binary",
    "application/unknown", "application/x-www-form-urlencoded",
})

# Names in common use for the accepted formats, mapped to the one ocrvault reports.
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/tif": "image/tiff",
    "image/x-tiff": "image/tiff",
    "image/x-bmp": "image/bmp",
    "image/x-ms-bmp": "image/bmp",
    "image/x-webp": "image/webp",
    "application/x-pdf": "application/pdf",
    "application/acrobat": "application/pdf",
}


def declared_media_type(header: str | bytes | None) -> str | None:
    """``type/subtype`` of a Content-Type value, lower-cased; None if absent or malformed."""
    if header is None:
        return None
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    bare = text.split(";", 1)[0].strip().lower()
    if len(bare) > _MAX_LENGTH or not _MEDIA_TYPE.fullmatch(bare):
        return None
    return _ALIASES.get(bare, bare)


def contradicts(declared: str | None, detected: FileFormat) -> bool:
    """Whether a (normalised) declared type names a format other than the detected one."""
    return declared is not None and declared not in _GENERIC and declared != detected.media_type

"""Reading an upload into memory with a size cap, never through a temp file.

Starlette's multipart parser (behind FastAPI's UploadFile) spools parts over
1 MiB to a temporary file on disk, which would leave plaintext document bytes
there. So the raw request stream is read here, chunk by chunk, and cut off with
413 as soon as it passes the cap; multipart bodies are parsed in memory with
python-multipart's streaming parser. The bytes read are held in the process's
upload budget (``api/limits.py``) until the request ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from ocrvault.api.limits import Reservation, allow_body, declared_length
from ocrvault.errors import ErrorCode, InputRejected, OcrVaultError
from ocrvault.ingest.declared import declared_media_type

FILE_FIELD = b"file"
MULTIPART_ROOM = 64 * 1024  # beyond the file: generous room for other multipart fields


def _too_large(limit: int) -> InputRejected:
    return InputRejected(ErrorCode.FILE_TOO_LARGE,
                         f"The upload exceeds the limit of {limit} bytes.")


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    # The bare type/subtype the client gave the file (the body's or the part's Content-Type),
    # or None; only ever compared with what the bytes are, never trusted.
    declared_type: str | None


async def receive_upload(request: Request, limit: int, reservation: Reservation,
                         field: bytes | None = FILE_FIELD) -> Upload:
    """The uploaded file and the media type its sender declared for it; the bytes in memory
    are held in ``reservation`` (against the declared length first, then as they come).
    A multipart body carries the file in ``field``, or in its first part when None (as
    vendors' clients name that field as they please)."""
    declared = declared_length(request.headers.get("content-length", ""))
    if declared is not None:
        if declared > limit + MULTIPART_ROOM:
            raise _too_large(limit)
        await reservation.cover(declared)
    allow_body(request.scope, limit + MULTIPART_ROOM)
    chunks = _chunks(request, limit, reservation)
    header = request.headers.get("content-type", "")
    content_type, options = parse_options_header(header)
    if content_type == b"multipart/form-data":
        part = await _read_multipart(chunks, options.get(b"boundary"), limit, field)
        return Upload(bytes(part.data), declared_media_type(part.content_type))
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return Upload(bytes(body), declared_media_type(header))


async def _chunks(request: Request, limit: int, reservation: Reservation
                  ) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit + MULTIPART_ROOM:
            raise _too_large(limit)
        await reservation.cover(received)
        yield chunk


class _FilePart:
    """Collects the ``field`` field (the first part when None); every other is ignored."""

    def __init__(self, limit: int, field: bytes | None) -> None:
        self.limit = limit
        self.field = field
        self.data = bytearray()
        self.found = False
        self._in_file = False
        self._header_field = b""
        self._header_value = b""
        self._disposition = b""
        self._part_type: bytes | None = None
        self.content_type: bytes | None = None  # the file part's own Content-Type

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
        }

    def _part_begin(self) -> None:
        self._in_file = False
        self._disposition = b""
        self._part_type = None

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            self._disposition = self._header_value
        elif self._header_field.lower() == b"content-type":
            self._part_type = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        self._in_file = (self.field is None or params.get(b"name") == self.field) and not self.found
        if self._in_file:
            self.content_type = self._part_type
        self.found = self.found or self._in_file

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.data += data[start:end]
            if len(self.data) > self.limit:
                raise _too_large(self.limit)


async def _read_multipart(chunks: AsyncIterator[bytes], boundary: bytes | None,
                          limit: int, field: bytes | None) -> _FilePart:
    if not boundary:
        raise InputRejected(ErrorCode.INVALID_PARAMETER, "The multipart body has no boundary.")
    part = _FilePart(limit, field)
    parser = MultipartParser(boundary, part.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except OcrVaultError:  # ours: too large, too slow, no room
        raise
    except Exception as error:  # the parser's own errors: malformed multipart
        raise InputRejected(
            ErrorCode.INVALID_PARAMETER, "The multipart body is malformed."
        ) from error
    if not part.found:
        raise InputRejected(ErrorCode.INVALID_PARAMETER,
                            f"Send the file in the multipart field '{field.decode()}'."
                            if field else "The multipart body holds no part.")
    return part

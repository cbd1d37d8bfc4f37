"""Serving with uvicorn: the connection limits that hold before any key is checked.

uvicorn (httptools) bounds neither the time nor the size of a request's head: a client
that sends half a header line and waits holds its socket for ever (keep-alive timing only
starts after a first response), and httptools buffers a header line of any length.
:class:`GuardedProtocol` adds a deadline for each head (408), a cap on its bytes and its
header fields (431), and a cap on open connections (closed at once beyond it).
Request bodies are bounded in time and size by the ASGI middleware in ``api/limits.py``.

Residual risks: each open socket still costs a descriptor and a few KiB until its
deadline, so a flood faster than ``max_connections / header_timeout_seconds`` connections a
second is refused at the cap, and normal clients with it: a network-level limit must take
over. With direct TLS, ``connection_made`` comes after the handshake, which asyncio bounds
at 60 s (uvicorn does not expose it), not at the header deadline.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any, ClassVar, cast

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ocrvault.api.problems import PROBLEM_JSON, problem_response
from ocrvault.config import Settings
from ocrvault.errors import ErrorCode

log = logging.getLogger(__name__)

# Room a running server needs besides its connections: database, blobs, sandbox pipes, logs.
SPARE_FILES = 256
# httptools gets data in reads of up to 256 KiB; a head may begin and end inside one.
_READ = 256 * 1024
LINGER_SECONDS = 2.0


class _LingeringTransport:
    """A transport whose close, once something was answered, first sends the answer and a
    FIN and stops reading, and closes the socket ``LINGER_SECONDS`` later.

    Closed at once with a body still arriving, the socket would send a reset, and the
    client's kernel would drop our unread answer (a 401, a 413) with it. Reading stops,
    so the client's further bytes fill the socket buffers and are never read.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._answered = False
        self._closing = False

    def write(self, data: bytes) -> None:
        self._answered = True
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def close(self) -> None:
        if self.is_closing():
            return
        self._closing = True
        if not self._answered or not self._transport.can_write_eof():
            self._transport.close()
            return
        self._transport.pause_reading()
        self._transport.write_eof()
        self._loop.call_later(LINGER_SECONDS, self._transport.close)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of :func:`guarded_protocol`."""

    header_timeout: ClassVar[float]
    max_header_bytes: ClassVar[int]
    max_headers: ClassVar[int]
    max_connections: ClassVar[int]

    _head_timer: asyncio.TimerHandle | None = None
    _head_raw = 0  # bytes received while this head is incomplete (whole reads)
    _head_bytes = 0  # the head's own bytes: target and fields
    _head_fields = 0
    _refusal: tuple[ErrorCode, str] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, _LingeringTransport(transport, self.loop)))
        if len(self.connections) > self.max_connections:
            transport.close()
            return
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head()
        super().connection_lost(exc)

    def _start_head(self) -> None:
        self._stop_head()
        self._head_raw = self._head_bytes = self._head_fields = 0
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _stop_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        answering = self.cycle is not None and not self.cycle.response_complete
        if self._head_raw == 0 or answering:  # nobody to answer, or no room for an answer
            self.transport.close()
        else:
            self._refuse(ErrorCode.REQUEST_TIMEOUT, "Send a request's headers within "
                         f"{self.header_timeout:g} seconds of the previous step.")

    def _refuse(self, code: ErrorCode, detail: str) -> None:
        """Answer with a problem and close; no ASGI app sees the request."""
        self._stop_head()
        if self.transport.is_closing():
            return
        body = bytes(problem_response(code, detail).body)
        self.transport.write(b"".join((
            STATUS_LINE[code.status], b"content-type: ", PROBLEM_JSON.encode(), b"\r\n",
            b"content-length: ", str(len(body)).encode(), b"\r\n",
            b"connection: close\r\n\r\n", body,
        )))
        self.transport.close()

    def _too_long(self) -> tuple[ErrorCode, str]:
        return (ErrorCode.HEADERS_TOO_LARGE,
                f"Send at most {self.max_header_bytes} bytes of request line and headers.")

    def _over(self) -> tuple[ErrorCode, str] | None:
        if self._head_fields > self.max_headers:
            return ErrorCode.HEADERS_TOO_LARGE, f"Send at most {self.max_headers} header fields."
        return self._too_long() if self._head_bytes > self.max_header_bytes else None

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._head_timer is not None and self._head_raw > self.max_header_bytes + 2 * _READ:
            self._refuse(*self._too_long())  # httptools buffers a header line whole
            return
        super().data_received(data)
        if self._head_timer is not None:  # a head still incomplete (it may begin mid-read)
            self._head_raw += len(data)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to any parser error, the ones our callbacks raise included.
        refusal, self._refusal = self._refusal, None
        if refusal is None:
            self._stop_head()
            super().send_400_response(msg)
        else:
            self._refuse(*refusal)

    def _check_head(self) -> None:
        self._refusal = self._over()
        if self._refusal is not None:
            raise ValueError(self._refusal[1])  # stops httptools; see send_400_response

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:  # the next request on a kept-alive connection
            self._start_head()

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        self._check_head()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        self._head_bytes += len(name) + len(value) + 4
        self._check_head()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_head()
        super().on_headers_complete()


def guarded_protocol(settings: Settings) -> type[GuardedProtocol]:
    """The protocol class for uvicorn's ``http=``, with the limits of ``settings``."""
    return type("GuardedProtocol", (GuardedProtocol,), {
        "header_timeout": settings.header_timeout_seconds,
        "max_header_bytes": settings.max_header_bytes,
        "max_headers": settings.max_headers,
        "max_connections": settings.max_connections,
    })


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the client limits of ``settings``."""
    return {
        "http": guarded_protocol(settings),
        "timeout_keep_alive": settings.keep_alive_seconds,
        # Requests in progress; uvicorn answers 503 beyond.
        "limit_concurrency": settings.max_connections,
        # The pure-Python parser's own head cap, for whoever picks http="h11".
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }


def fit_open_files(connections: int, spare: int = SPARE_FILES) -> int:
    """Raise the soft open-files limit so that ``connections`` fit (up to the hard limit);
    the number of connections that fit afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + spare
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    if soft == resource.RLIM_INFINITY:
        return connections
    return max(1, min(connections, soft - spare))

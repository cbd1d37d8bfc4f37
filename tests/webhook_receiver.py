"""A real HTTP webhook receiver on 127.0.0.1 for tests: it records every delivery and checks
each with the ``standardwebhooks`` package from PyPI, unmodified."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    sni: str | None = None

    def verifies_with(self, secret: str) -> bool:
        """Whether ``standardwebhooks`` accepts this delivery for ``secret``."""
        try:
            Webhook(secret).verify(self.body, self.headers)
        except WebhookVerificationError:
            return False
        return True

    @property
    def signatures(self) -> list[str]:
        return self.headers["webhook-signature"].split()


@dataclass
class Receiver:
    """Answers each POST with the next of ``answers`` (then 200); ``redirect_to`` makes
    every answer a 302 there."""

    port: int = 0
    scheme: str = "http"
    host: str = "127.0.0.1"
    answers: list[int] = field(default_factory=list)
    redirect_to: str | None = None
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sni: dict[int, str | None] = field(default_factory=dict)

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length", "0"))
        body = handler.rfile.read(length)
        sni = self._sni.get(id(handler.request)) if self.scheme == "https" else None
        with self._lock:
            self.received.append(Received(handler.path, {k.lower(): v for k, v in
                                                         handler.headers.items()}, body, sni))
            status = self.answers.pop(0) if self.answers else 200
        if self.redirect_to is not None:
            handler.send_response(302)
            handler.send_header("Location", self.redirect_to)
        else:
            handler.send_response(status)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")


@contextmanager
def receiving(answers: list[int] | None = None, *, redirect_to: str | None = None,
              tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> Iterator[Receiver]:
    """A started receiver on a free port of 127.0.0.1 (HTTPS with ``tls``), named ``host``
    in its URL."""
    receiver = Receiver(answers=list(answers or []), redirect_to=redirect_to,
                        scheme="https" if tls else "http", host=host)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver._answer(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        def remember_sni(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None,
                         _: ssl.SSLContext) -> None:
            receiver._sni[id(sock)] = name

        tls.sni_callback = remember_sni  # type: ignore[assignment]
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

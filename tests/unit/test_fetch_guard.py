"""fetch.py: URLs a caller gives are fetched only from public addresses, over verified
TLS, from the address that was checked, without redirects, within the size cap."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.fetch import checked_address, download

BODY = b"%PDF-1.7 a document" * 100


def resolver(*addresses: str) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        family = socket.AF_INET6
        return [(family if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in addresses]
    return resolve


@pytest.mark.parametrize("addresses", [
    ("127.0.0.1",), ("10.1.2.3",), ("192.168.0.9",), ("172.16.5.5",), ("169.254.169.254",),
    ("100.64.0.1",), ("0.0.0.0",), ("::1",), ("fe80::1",), ("fc00::1",), ("::ffff:127.0.0.1",),
    ("240.0.0.1",), ("224.0.0.1",), ("93.184.216.34", "10.0.0.1"),  # one bad is enough
])
def test_any_non_public_resolved_address_refuses_the_url(addresses: tuple[str, ...]) -> None:
    with pytest.raises(InputRejected) as refused:
        checked_address("https://docs.example/a.pdf", resolver(*addresses))
    assert refused.value.code is ErrorCode.INVALID_PARAMETER


@pytest.mark.parametrize("url", ["http://docs.example/a.pdf", "ftp://docs.example/a",
                                 "https://user:pw@docs.example/a", "file:///etc/passwd",
                                 "https:///nohost", "https://docs.example:99999/a"])
def test_only_plain_https_urls_are_fetched(url: str) -> None:
    with pytest.raises(InputRejected):
        checked_address(url, resolver("93.184.216.34"))


def test_a_public_host_gives_the_checked_address_to_connect_to() -> None:
    assert checked_address("https://docs.example:8443/a.pdf?x=1",
                           resolver("93.184.216.34")) == (
        "93.184.216.34", "docs.example", 8443, "/a.pdf?x=1")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "https://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        if self.path != "/unsized":
            self.send_header("Content-Length", str(len(BODY)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def https() -> Iterator[tuple[int, ssl.SSLContext]]:
    """An HTTPS server on loopback whose certificate names ``docs.example``."""
    ca = trustme.CA()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("docs.example").configure_cert(server_context)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    try:
        yield server.server_address[1], client_context
    finally:
        server.shutdown()
        server.server_close()


def test_the_checked_address_is_dialled_with_tls_verified_for_the_host_name(
        https: tuple[int, ssl.SSLContext]) -> None:
    port, context = https
    assert download("127.0.0.1", "docs.example", port, "/doc", 10_000,
                    context=context) == BODY
    with pytest.raises(InputRejected):  # the certificate does not name this host
        download("127.0.0.1", "other.example", port, "/doc", 10_000, context=context)


def test_a_redirect_is_refused_not_followed(https: tuple[int, ssl.SSLContext]) -> None:
    port, context = https
    with pytest.raises(InputRejected) as refused:
        download("127.0.0.1", "docs.example", port, "/redirect", 10_000, context=context)
    assert "302" in refused.value.detail


@pytest.mark.parametrize("path", ["/doc", "/unsized"])
def test_the_size_cap_holds_with_or_without_content_length(
        https: tuple[int, ssl.SSLContext], path: str) -> None:
    port, context = https
    with pytest.raises(InputRejected) as refused:
        download("127.0.0.1", "docs.example", port, path, len(BODY) - 1, context=context)
    assert refused.value.code is ErrorCode.FILE_TOO_LARGE

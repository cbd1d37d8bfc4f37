"""Fetching a document from a URL a caller gives (Azure's ``{"url"}``, Document
Intelligence's ``urlSource``), guarded against server-side request forgery.

Off unless ``url_input`` is set. When on: https only, no credentials in the URL; every
address the host name resolves to must be public (not loopback, private, link-local,
169.254.169.254 included, shared, multicast, reserved or unspecified, IPv4-mapped IPv6
unwrapped first), else the URL is refused; the connection goes to the address that was
checked (a second lookup could answer otherwise: DNS rebinding), with TLS verified for
the host name; redirects are refused, not followed; and the body is cut off at the
upload limit while it is read.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from ocrvault.errors import ErrorCode, InputRejected

Resolver = Callable[..., Sequence[tuple[Any, ...]]]
MAX_URL_CHARS = 2048
_CHUNK = 64 * 1024


def _refused(detail: str) -> InputRejected:
    return InputRejected(ErrorCode.INVALID_PARAMETER, detail)


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local)


def checked_address(url: str, resolve: Resolver = socket.getaddrinfo) -> tuple[str, str, int, str]:
    """(address to connect to, host name, port, path) of ``url``, once every address its
    host resolves to is public; raises ``invalid_parameter`` otherwise."""
    if len(url) > MAX_URL_CHARS:
        raise _refused(f"The URL is longer than {MAX_URL_CHARS} characters.")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise _refused("Only https:// URLs are fetched.")
    if parts.username is not None or parts.password is not None:
        raise _refused("A URL with credentials in it is not fetched.")
    try:
        port = parts.port or 443
        found = resolve(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        raise _refused("The URL's host could not be resolved.") from None
    addresses = sorted({str(info[4][0]) for info in found})
    if not addresses or not all(is_public(address) for address in addresses):
        raise _refused("The URL's host is not a public address.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return addresses[0], parts.hostname, port, path


class _PinnedConnection(http.client.HTTPSConnection):
    """An HTTPS connection to one checked address, TLS verified for the host name."""

    def __init__(self, address: str, host: str, port: int, timeout: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def download(address: str, host: str, port: int, path: str, limit: int, *,
             timeout: float = 15.0, context: ssl.SSLContext | None = None) -> bytes:
    """GET ``path`` from ``address`` as ``host``: 200 only (a redirect is refused), at
    most ``limit`` bytes, counted as they arrive."""
    connection = _PinnedConnection(address, host, port, timeout,
                                   context or ssl.create_default_context())
    try:
        connection.request("GET", path, headers={"Accept": "*/*", "Accept-Encoding": "identity"})
        with connection.getresponse() as response:  # holds the socket once the head is read
            return _body(response, limit)
    except (OSError, http.client.HTTPException):
        raise _refused("The URL could not be fetched.") from None
    finally:
        connection.close()


def _body(response: http.client.HTTPResponse, limit: int) -> bytes:
    if response.status != 200:
        raise _refused(f"The URL answered {response.status}; redirects are not followed.")
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    while chunk := response.read(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> InputRejected:
    return InputRejected(ErrorCode.FILE_TOO_LARGE,
                         f"The document at the URL exceeds the limit of {limit} bytes.")


def fetch(url: str, limit: int, resolve: Resolver = socket.getaddrinfo) -> bytes:
    """The document at ``url``, under every guard of this module."""
    address, host, port, path = checked_address(url, resolve)
    return download(address, host, port, path, limit)

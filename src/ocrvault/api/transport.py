"""Transport security: TLS 1.2+ for direct HTTPS, and the headers every response carries.

HSTS is sent on HTTPS responses only (RFC 6797 forbids it over plain HTTP). Behind
a proxy the scheme comes from X-Forwarded-Proto, which uvicorn honours only from
the addresses in ``OCRVAULT_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=31536000; includeSubDomains"


def tls_context_factory(_config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """Uvicorn's context with TLS 1.0/1.1 refused, whatever the OpenSSL defaults are."""
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    return context


class SecurityHeadersMiddleware:
    """A pure ASGI middleware, like the request-id one: ``@app.middleware("http")`` would
    run every request through an extra task and memory streams (a measurable share of a
    small request's CPU)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        # Results are documents: no proxy or browser cache may keep a copy.
        no_store = str(scope.get("path", "")).startswith("/v1/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if https:
                    headers["Strict-Transport-Security"] = HSTS
                headers["X-Content-Type-Options"] = "nosniff"
                if no_store:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)

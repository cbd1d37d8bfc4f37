"""Transport security: TLS 1.2+ for direct HTTPS, and the headers every response carries.

HSTS is sent on HTTPS responses only (RFC 6797 forbids it over plain HTTP). Behind
a proxy the scheme comes from X-Forwarded-Proto, which uvicorn honours only from
the addresses in ``OCRVAULT_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from starlette.types import Scope

from ocrvault.api.asgi import ResponseHeadersMiddleware

HSTS = "max-age=31536000; includeSubDomains"


def tls_context_factory(_config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """Uvicorn's context with TLS 1.0/1.1 refused, whatever the OpenSSL defaults are."""
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    return context


class SecurityHeadersMiddleware(ResponseHeadersMiddleware):
    def headers_for(self, scope: Scope) -> dict[str, str]:
        headers = {"X-Content-Type-Options": "nosniff"}
        if scope.get("scheme") == "https":
            headers["Strict-Transport-Security"] = HSTS
        if str(scope.get("path", "")).startswith("/v1/"):
            # Results are documents: no proxy or browser cache may keep a copy.
            headers["Cache-Control"] = "no-store"
        return headers

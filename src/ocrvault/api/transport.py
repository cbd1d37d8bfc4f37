"""Transport security: TLS 1.2+ for direct HTTPS, and the headers every response carries.

HSTS is sent on HTTPS responses only (RFC 6797 forbids it over plain HTTP). Behind
a proxy the scheme comes from X-Forwarded-Proto, which uvicorn honours only from
the addresses in ``OCRVAULT_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Scope

from ocrvault.api.asgi import ResponseHeadersMiddleware

HSTS = "max-age=31536000; includeSubDomains"
# The API answers JSON and files, never a page: a browser may run, load or frame nothing.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"


# What direct HTTPS accepts at the least; the posture report names it.
MINIMUM_TLS = ssl.TLSVersion.TLSv1_2


def tls_name(version: ssl.TLSVersion) -> str:
    """'TLS 1.2' for TLSVersion.TLSv1_2."""
    return version.name.replace("TLSv", "TLS ").replace("_", ".")


def tls_context_factory(_config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """Uvicorn's context with TLS 1.0/1.1 refused, whatever the OpenSSL defaults are."""
    context = default()
    context.minimum_version = MINIMUM_TLS
    context.options |= ssl.OP_NO_COMPRESSION
    return context


class SecurityHeadersMiddleware(ResponseHeadersMiddleware):
    """``page_policies``: the Content-Security-Policy of each page (by path) that needs
    more than :data:`API_POLICY`, the docs page; every other response gets that."""

    def __init__(self, app: ASGIApp, page_policies: Mapping[str, str] | None = None) -> None:
        super().__init__(app)
        self.page_policies = dict(page_policies or {})

    def headers_for(self, scope: Scope) -> dict[str, str]:
        path = str(scope.get("path", ""))
        headers = {"X-Content-Type-Options": "nosniff",
                   "Content-Security-Policy": self.page_policies.get(path, API_POLICY)}
        if scope.get("scheme") == "https":
            headers["Strict-Transport-Security"] = HSTS
        if path.startswith("/v1/"):
            # Results are documents: no proxy or browser cache may keep a copy.
            headers["Cache-Control"] = "no-store"
        return headers

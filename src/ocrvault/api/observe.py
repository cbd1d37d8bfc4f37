"""Each HTTP request, seen by the operator: a Prometheus count and latency by route
template, a ``http.request`` span, and (with ``OCRVAULT_LOG_FORMAT=json``) one access log
line with the request id, route template, status, duration and the tenant (hashed or
omitted, ``OCRVAULT_LOG_TENANT``).

The route is the template FastAPI matched (``/v1/jobs/{job_id}``), never the path: a
path holds job ids, and an unmatched path is whatever a client typed, so it is counted
as ``unmatched``. The query string is never looked at.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocrvault.api.deps import PRINCIPALS_SCOPE_KEY
from ocrvault.logs import tenant_ref
from ocrvault.telemetry import metrics, tracing

access_log = logging.getLogger("ocrvault.access")
UNMATCHED = "unmatched"


def route_of(scope: Scope) -> str:
    """The matched route's template, or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def tenant_of(scope: Scope) -> str | None:
    """The tenant whose key this request was admitted with, if any."""
    principals: dict[Any, Any] = scope.get(PRINCIPALS_SCOPE_KEY) or {}
    return next((p.tenant_id for p in principals.values()), None)


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, *, log_lines: bool, log_tenant: str) -> None:
        self.app = app
        self.log_lines = log_lines
        self.log_tenant = log_tenant

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app fails before answering

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"]
        with tracing.span("http.request", **{"http.request.method": method}) as span:
            try:
                await self.app(scope, receive, observed_send)
            finally:
                route = route_of(scope)
                seconds = time.perf_counter() - started
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                metrics.REQUESTS.labels(method=method, route=route, status=str(status)).inc()
                metrics.REQUEST_SECONDS.labels(method=method, route=route).observe(seconds)
                if self.log_lines:
                    self._log(scope, method, route, status, seconds)

    def _log(self, scope: Scope, method: str, route: str, status: int, seconds: float) -> None:
        request_id = (scope.get("state") or {}).get("request_id")
        access_log.info("%s %s %d", method, route, status, extra={
            "request_id": request_id, "method": method, "route": route, "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "tenant": tenant_ref(tenant_of(scope), self.log_tenant)})

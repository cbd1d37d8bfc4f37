"""The FastAPI app factory: one app per composition (role api or all), so tests build one
per data dir."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager

import fastapi.routing
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from starlette.routing import BaseRoute

from ocrvault import __version__
from ocrvault.api import compat, problems
from ocrvault.api.context import RequestIdMiddleware
from ocrvault.api.deps import Served
from ocrvault.api.docs import DOCS_PATH, install_docs
from ocrvault.api.limits import BodyLimitMiddleware, BodyLimits, UploadBudget
from ocrvault.api.observe import ObserveMiddleware
from ocrvault.api.routes import (
    audit,
    capabilities,
    health,
    jobs,
    keys,
    posture,
    read,
    retention,
    sample,
    webhooks,
)
from ocrvault.api.transport import SecurityHeadersMiddleware
from ocrvault.errors import ErrorCode
from ocrvault.logs import install_key_redaction

DESCRIPTION = """Self-hosted OCR with encryption at rest, scoped keys and deletion you can prove.

Errors are RFC 9457 `application/problem+json` with a stable `code`, one of:
""" + ", ".join(f"`{code.value}`" for code in ErrorCode)


# FastAPI's native OpenTelemetry would trace requests (URLs included) and, with
# FASTAPI_OTEL_AUTO_CONFIGURE and OTEL_* variables, export them. ocrvault sends
# nothing anywhere but to configured webhooks, so all of it is off, whatever the env.
NO_TELEMETRY: TelemetryConfig = {
    "tracing": False, "metrics": False, "logs": False, "operation_spans": False,
    "auto_configure": False,
}


def create_app(runtime: Served, *, start: bool = True) -> FastAPI:
    """An app serving ``runtime``; with ``start`` it runs (its workers, its periodic work)
    during the app's lifespan."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if start:
            runtime.start()
        try:
            yield
        finally:
            if start:
                runtime.stop()

    # redirect_slashes=False: Starlette's redirect to the other slash form builds its
    # Location from the Host header, an open redirect; '/v1/jobs/' is a plain 404 instead.
    # FastAPI's own /docs loads Swagger UI from a CDN; docs.py serves it from the package.
    app = FastAPI(title="ocrvault", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, telemetry=NO_TELEMETRY, redirect_slashes=False,
                  docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    app.state.upload_budget = UploadBudget.of(runtime.settings)
    install_key_redaction()
    problems.install(app, compat.error_shape)
    page_policies = {posture.PATH: posture.PAGE_POLICY}
    if runtime.settings.docs_enabled:
        page_policies[DOCS_PATH] = install_docs(app)
    app.add_middleware(BodyLimitMiddleware, limits=BodyLimits.of(runtime.settings))
    app.add_middleware(SecurityHeadersMiddleware, page_policies=page_policies)
    app.add_middleware(RequestIdMiddleware)
    # Outermost: it times and counts everything, refusals by the limits above included.
    app.add_middleware(ObserveMiddleware, log_lines=runtime.settings.log_format == "json",
                       log_tenant=runtime.settings.log_tenant)
    for module in (health, read, sample, jobs, keys, audit, retention, capabilities,
                   webhooks, posture):
        app.include_router(module.router)
    for router in compat.routers:
        app.include_router(router)
    return app


def build_ahead(app: FastAPI) -> None:
    """Build now, before the app serves, what it would otherwise build under its first
    requests: the OpenAPI document (served at /openapi.json), and with it FastAPI's
    per-route state, which a burst of clients right after start would wait for; and each
    endpoint's source location, which FastAPI reads from the source file (for its error
    messages) on the endpoint's first request."""
    app.openapi()
    locate = getattr(fastapi.routing, "_extract_endpoint_context", None)  # cached by FastAPI
    if locate is not None:
        for route in api_routes(app.routes):
            locate(route.dependant.call)


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every endpoint of ``routes``, those of included routers too."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # FastAPI's _IncludedRouter
        if included is not None:
            yield from api_routes(included.routes)

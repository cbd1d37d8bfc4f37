"""Request dependencies: the service a route calls, the request's context, and the caller
as a Principal.

A route names the one service it uses (``jobs: JobServiceDep``), never the runtime: what
it depends on is in its signature, and a test can replace that one service through
``app.dependency_overrides``. Only this module knows where the services live.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any, Protocol

from fastapi import Depends, Header, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ocrvault.access.service import AccessService
from ocrvault.addresses import is_loopback
from ocrvault.api.limits import UploadBudget
from ocrvault.audit import AuditService
from ocrvault.config import Settings
from ocrvault.crypto.customer_key import CustomerKey, parse_customer_key
from ocrvault.engines.catalog import EngineCatalog
from ocrvault.errors import AuthError, ErrorCode, InputRejected
from ocrvault.jobs.links import ResultLinks
from ocrvault.jobs.service import JobService
from ocrvault.principal import Principal, RequestContext, Scope
from ocrvault.retention.reaper import Reaper, ReaperStats
from ocrvault.retention.service import RetentionService
from ocrvault.webhooks.service import WebhookService

_bearer = HTTPBearer(auto_error=False,
                     description="An ocrvault API key: ocv_live_... or ocv_test_...")

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class Served(Protocol):
    """What the app needs of the composition it serves: role ``api`` (compose/api.py) or
    ``all`` (runtime.py). The app never builds one, so it never loads what it does not use."""

    @property
    def settings(self) -> Settings: ...
    @property
    def access(self) -> AccessService: ...
    @property
    def jobs(self) -> JobService: ...
    @property
    def audit_reader(self) -> AuditService: ...
    @property
    def retention(self) -> RetentionService: ...
    @property
    def links(self) -> ResultLinks: ...
    @property
    def webhooks(self) -> WebhookService: ...
    @property
    def engines(self) -> EngineCatalog:
        """Describes the engines (GET /v1/engines) without creating them."""
        ...
    @property
    def reaper(self) -> Reaper | None:
        """The reaper where this node runs it, for /metrics."""
        ...
    def probes(self) -> Mapping[str, Callable[[], object]]:
        """What /readyz checks, by name."""
        ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


def _runtime(request: Request) -> Served:
    value: Served = request.app.state.runtime
    return value


def job_service(request: Request) -> JobService:
    return _runtime(request).jobs


def access_service(request: Request) -> AccessService:
    return _runtime(request).access


def retention_service(request: Request) -> RetentionService:
    return _runtime(request).retention


def webhook_service(request: Request) -> WebhookService:
    return _runtime(request).webhooks


def audit_reader(request: Request) -> AuditService:
    return _runtime(request).audit_reader


def engine_catalog(request: Request) -> EngineCatalog:
    return _runtime(request).engines


def settings(request: Request) -> Settings:
    return _runtime(request).settings


def result_links(request: Request) -> ResultLinks:
    return _runtime(request).links


Probe = Callable[[], object]


def readiness_probes(request: Request) -> Mapping[str, Probe]:
    """What /readyz checks, by name: each probe raises when its part is not ready."""
    return _runtime(request).probes()


def reaper_stats(request: Request) -> ReaperStats | None:
    """The reaper's figures where this node runs it (role ``all``), else None."""
    reaper = _runtime(request).reaper
    return reaper.stats if reaper else None


JobServiceDep = Annotated[JobService, Depends(job_service)]
AccessServiceDep = Annotated[AccessService, Depends(access_service)]
RetentionServiceDep = Annotated[RetentionService, Depends(retention_service)]
WebhookServiceDep = Annotated[WebhookService, Depends(webhook_service)]
AuditReaderDep = Annotated[AuditService, Depends(audit_reader)]
EngineCatalogDep = Annotated[EngineCatalog, Depends(engine_catalog)]
SettingsDep = Annotated[Settings, Depends(settings)]
ResultLinksDep = Annotated[ResultLinks, Depends(result_links)]
ReadinessProbesDep = Annotated[Mapping[str, Probe], Depends(readiness_probes)]
ReaperStatsDep = Annotated[ReaperStats | None, Depends(reaper_stats)]


def request_context(request: Request) -> RequestContext:
    """The request id (set by api/context.py) and the client address (uvicorn takes it from
    X-Forwarded-For only when the peer is a trusted proxy)."""
    return RequestContext(request_id=request.state.request_id,
                          client_ip=request.client.host if request.client else None)


_PRINCIPALS = "ocrvault.principals"  # request scope key: {Scope: Principal} checked so far
_SCOPE_OF: dict[Callable[..., Principal], Scope] = {}


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None,
                  scope: Scope) -> Principal:
    return authenticate_key(request, credentials.credentials if credentials else None, scope)


def authenticate_key(request: Request, presented: str | None, scope: Scope) -> Principal:
    """The caller of a key ``presented`` however the API asks for it (a bearer token here,
    a vendor's header in api/compat/), checked once per request and scope, with every
    restriction of the key."""
    checked: dict[Scope, Principal] = request.scope.setdefault(_PRINCIPALS, {})
    if scope not in checked:
        checked[scope] = access_service(request).authenticate(
            presented, request_context(request), scope)
    return checked[scope]


@functools.cache
def require_scope(scope: Scope) -> Callable[[Request, Credentials], Principal]:
    """The dependency that authenticates and authorizes a call needing ``scope``.

    One function per scope, so a test or benchmark can replace it through
    ``app.dependency_overrides[require_scope(scope)]``.
    """

    def authenticated(request: Request, credentials: Credentials) -> Principal:
        return _authenticate(request, credentials, scope)

    _SCOPE_OF[authenticated] = scope
    return authenticated


def _scopes_required(dependant: Dependant) -> list[Scope]:
    found = [_SCOPE_OF[dependant.call]] if dependant.call in _SCOPE_OF else []
    return found + [scope for sub in dependant.dependencies for scope in _scopes_required(sub)]


class AuthFirstRoute(APIRoute):
    """A route that checks the caller's key before its body is read.

    FastAPI reads and parses a route's body before it resolves any dependency, so a caller
    without a key could make the server read a body of any size. Here the key is checked
    first (the dependency then finds the result), and the body read next, within the
    limits of ``api/limits.py``, whose refusals FastAPI would otherwise turn into a 400.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle
        scopes = _scopes_required(self.dependant)

        async def authenticate_then_handle(request: Request) -> Response:
            credentials = await _bearer(request)
            overridden = request.app.dependency_overrides
            for scope in scopes:
                if require_scope(scope) not in overridden:
                    await run_in_threadpool(_authenticate, request, credentials, scope)
            await request.body()  # kept by the request for FastAPI
            return await handle(request)

        return authenticate_then_handle


def upload_budget(request: Request) -> UploadBudget:
    budget: UploadBudget = request.app.state.upload_budget
    return budget


UploadBudgetDep = Annotated[UploadBudget, Depends(upload_budget)]


def _is_private_channel(request: Request) -> bool:
    """HTTPS (directly, or per a trusted proxy), or a loopback peer."""
    return request.url.scheme == "https" or is_loopback(
        request.client.host if request.client else "")


def customer_key(
    request: Request,
    key: Annotated[str | None, Header(
        alias="X-Ocrvault-Customer-Key", max_length=64,
        description="Your own 256-bit key, base64: the job's data is sealed so that only "
        "this key opens it; send it again to read the result. ocrvault keeps its hash only.",
    )] = None,
    key_sha256: Annotated[str | None, Header(
        alias="X-Ocrvault-Customer-Key-SHA256", max_length=64,
        description="Base64 SHA-256 of the customer key, to catch a key mangled in transit",
    )] = None,
) -> CustomerKey | None:
    if key is None and key_sha256 is None:
        return None
    if not _is_private_channel(request):
        raise AuthError(ErrorCode.INSECURE_TRANSPORT,
                        "A customer key is accepted over HTTPS only (or from loopback).")
    if key is None or key_sha256 is None:
        raise InputRejected(ErrorCode.INVALID_PARAMETER,
                            "Send both X-Ocrvault-Customer-Key and X-Ocrvault-Customer-Key-SHA256.")
    return parse_customer_key(key, key_sha256)


CustomerKeyDep = Annotated[CustomerKey | None, Depends(customer_key)]

"""Request dependencies: the runtime, the request's context, and the caller as a Principal."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ocrvault.access.principal import Principal, RequestContext, Scope
from ocrvault.runtime import Runtime

_bearer = HTTPBearer(auto_error=False,
                     description="An ocrvault API key: ocv_live_... or ocv_test_...")

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def runtime(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


def request_context(request: Request) -> RequestContext:
    """The request id (set by api/context.py) and the client address (uvicorn takes it from
    X-Forwarded-For only when the peer is a trusted proxy)."""
    return RequestContext(request_id=request.state.request_id,
                          client_ip=request.client.host if request.client else None)


@functools.cache
def require_scope(scope: Scope) -> Callable[[Request, Credentials], Principal]:
    """The dependency that authenticates and authorizes a call needing ``scope``.

    One function per scope, so a test or benchmark can replace it through
    ``app.dependency_overrides[require_scope(scope)]``.
    """

    def authenticated(request: Request, credentials: Credentials) -> Principal:
        presented = credentials.credentials if credentials else None
        return runtime(request).access.authenticate(presented, request_context(request), scope)

    return authenticated


RuntimeDep = Annotated[Runtime, Depends(runtime)]

"""Request dependencies: the runtime, and the caller as an immutable Principal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ocrvault.access.principal import Principal, Scope
from ocrvault.errors import AuthError, ErrorCode
from ocrvault.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="An ocrvault API key: ocv_live_... or ocv_test_...")


def runtime(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    presented = credentials.credentials if credentials else None
    return runtime(request).access.authenticate(presented)


def require_scope(scope: Scope) -> Callable[[Principal], Principal]:
    def check(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if not caller.has(scope):
            raise AuthError(ErrorCode.FORBIDDEN, f"This key lacks the scope '{scope.value}'.")
        return caller

    return check


RuntimeDep = Annotated[Runtime, Depends(runtime)]

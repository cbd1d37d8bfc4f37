"""The one place where errors become RFC 9457 problem+json responses."""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ocrvault.errors import ErrorCode, Misdirected, OcrVaultError, Throttled, Unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://ocrvault.dev/problems/"


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: ErrorCode


def problem_response(code: ErrorCode, detail: str, status: int | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    status = status or code.status
    body = Problem(type=TYPE_BASE + code.value, title=code.phrase, status=status, detail=detail,
                   code=code)
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers,
                        media_type=PROBLEM_JSON)


_HTTP_CODES = {
    401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED, 413: ErrorCode.FILE_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


@functools.lru_cache(maxsize=256)
def _path_pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)))


def _allowed_methods(request: Request) -> str | None:
    """The methods the OpenAPI document gives this path, across all its routes (Starlette's
    own ``Allow`` names only those of the first route whose path matched)."""
    paths: dict[str, dict[str, Any]] = request.app.openapi().get("paths", {})
    methods = {method.upper() for template, operations in paths.items()
               if _path_pattern(template).fullmatch(request.url.path) for method in operations}
    return ", ".join(sorted(methods)) or None


def install(app: FastAPI) -> None:
    @app.exception_handler(OcrVaultError)
    async def _ocrvault_error(_request: Request, error: OcrVaultError) -> JSONResponse:
        retry_after = (error.retry_after if isinstance(error, Throttled | Unavailable)
                       else None)
        headers = {"Retry-After": str(retry_after)} if retry_after else {}
        if isinstance(error, Misdirected) and error.location:
            headers["Location"] = error.location  # where this request belongs
        return problem_response(error.code, error.detail, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = f"Invalid {where}: {first.get('msg', 'invalid value')}."
        return problem_response(ErrorCode.INVALID_PARAMETER, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, ErrorCode.INVALID_PARAMETER)
        headers = dict(error.headers or {})
        if error.status_code == 405:  # RFC 9110: name every method the resource has
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return problem_response(code, str(error.detail), status=error.status_code,
                                headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(_request: Request, _error: ClientDisconnect) -> JSONResponse:
        # The client hung up mid-body: nothing to log, and nobody left to read this.
        return problem_response(ErrorCode.INVALID_PARAMETER, "The request body was cut short.")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.error("unhandled %s", type(error).__name__, exc_info=error)
        return problem_response(ErrorCode.INTERNAL_ERROR,
                                "An internal error occurred; it was logged.")

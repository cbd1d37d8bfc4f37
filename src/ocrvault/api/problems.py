"""The one place where errors become RFC 9457 problem+json responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ocrvault.errors import ErrorCode, OcrVaultError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://ocrvault.dev/problems/"


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: ErrorCode


def problem_response(code: ErrorCode, detail: str, status: int | None = None) -> JSONResponse:
    status = status or code.status
    body = Problem(type=TYPE_BASE + code.value, title=code.title, status=status, detail=detail,
                   code=code)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers,
                        media_type=PROBLEM_JSON)


_HTTP_CODES = {
    401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED, 413: ErrorCode.FILE_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


def install(app: FastAPI) -> None:
    @app.exception_handler(OcrVaultError)
    async def _ocrvault_error(_request: Request, error: OcrVaultError) -> JSONResponse:
        return problem_response(error.code, error.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = f"Invalid {where}: {first.get('msg', 'invalid value')}."
        return problem_response(ErrorCode.INVALID_PARAMETER, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, ErrorCode.INVALID_PARAMETER)
        return problem_response(code, str(error.detail), status=error.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.error("unhandled %s", type(error).__name__, exc_info=error)
        return problem_response(ErrorCode.INTERNAL_ERROR, "An internal error occurred; it was logged.")

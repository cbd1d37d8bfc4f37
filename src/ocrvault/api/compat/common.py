"""What the vendor doors share: routes whose errors come out in the vendor's shape, the
vendors' ways of presenting a key, and the timestamps their bodies carry."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from fastapi import Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from starlette.concurrency import run_in_threadpool

from ocrvault.api.deps import authenticate_key
from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, InputRejected, OcrVaultError, Throttled
from ocrvault.fetch import MAX_URL_CHARS, fetch
from ocrvault.ingest.pages import MAX_PAGE_NUMBER, MAX_PAGE_SPEC_CHARS
from ocrvault.principal import Principal, Scope


class VendorError(OcrVaultError):
    """A refusal that the vendor names more precisely than our ErrorCode does
    (``NotSupportedLanguage``, ``InvalidImageUrl``, ``ModelNotFound``, ...); ``code``
    still gives its status and its meaning to anything that is not the vendor's door."""

    def __init__(self, code: ErrorCode, vendor_code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.vendor_code = vendor_code


ErrorRenderer = Callable[[OcrVaultError, str], Response]


class VendorRoute(APIRoute):
    """A route that answers every refusal, from the key check to the service, in its
    vendor's error shape (``render_error``), since the vendor's client parses nothing else.

    No ``render_error`` sees a stack trace or a document: only our code and detail.
    """

    render_error: ClassVar[ErrorRenderer]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        render = type(self).render_error

        async def handle_in_vendor_terms(request: Request) -> Response:
            error: OcrVaultError
            try:
                return await handle(request)
            except OcrVaultError as caught:
                error = caught
            except RequestValidationError as invalid:
                first = invalid.errors()[0] if invalid.errors() else {}
                where = ".".join(str(part) for part in first.get("loc", ()))
                error = InputRejected(ErrorCode.INVALID_PARAMETER,
                                      f"Invalid {where}: {first.get('msg', 'invalid value')}.")
            answer = render(error, request.state.request_id)
            if isinstance(error, Throttled) and error.retry_after:
                answer.headers["Retry-After"] = str(error.retry_after)
            return answer

        return handle_in_vendor_terms


def vendor_route(render: ErrorRenderer) -> type[VendorRoute]:
    """The route class of a vendor whose errors ``render`` shapes."""
    return type("VendorRoute", (VendorRoute,), {"render_error": staticmethod(render)})


@functools.cache
def subscription_key_caller(scope: Scope) -> Callable[..., Principal]:
    """Azure's way: ``Ocp-Apim-Subscription-Key: <an ocrvault API key>``, checked by the
    same function as /v1's bearer key (IP allow-list, environment, expiry, rate, scope)."""

    def caller(request: Request, key: Annotated[str | None, Header(
            alias="Ocp-Apim-Subscription-Key",
            description="An ocrvault API key, where Azure expects its subscription key")] = None,
               ) -> Principal:
        return authenticate_key(request, key, scope)

    return caller


_basic = HTTPBasic(auto_error=False, description="Any user name; the password is an ocrvault "
                   "API key (ABBYY's application password)")


@functools.cache
def basic_caller(scope: Scope) -> Callable[..., Principal]:
    """ABBYY's way: HTTP Basic, the password an ocrvault API key (the user name, ABBYY's
    application id, is free text); checked as /v1's bearer key is."""

    def caller(request: Request, credentials: Annotated[HTTPBasicCredentials | None,
                                                        Depends(_basic)]) -> Principal:
        return authenticate_key(request, credentials.password if credentials else None, scope)

    return caller


def iso(moment: datetime) -> str:
    """``2024-01-02T03:04:05Z``, as Azure and ABBYY write times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def base_url(request: Request) -> str:
    """This server's URL as the client reached it, for the absolute URLs the vendors'
    clients follow (uvicorn takes scheme and host from a trusted proxy only)."""
    return str(request.base_url).rstrip("/")


_AZURE_PAGES = re.compile(r"\s*\d+\s*(-\s*\d*\s*)?(,\s*\d+\s*(-\s*\d*\s*)?)*")


def azure_pages(spec: str | None) -> str | None:
    """Azure's ``1,3-5,8-`` in /v1's terms: an open range runs to the last page."""
    if not spec:
        return None
    if len(spec) > MAX_PAGE_SPEC_CHARS // 2 or not _AZURE_PAGES.fullmatch(spec):
        raise VendorError(ErrorCode.INVALID_PARAMETER, "InvalidPageRange",
                          f"The page range {spec[:40]!r} is not valid; use e.g. '1,3-5,8-'.")
    return re.sub(r"-\s*(?=,|$)", f"-{MAX_PAGE_NUMBER}", spec.replace(" ", ""))


URL_BODY_LIMIT = MAX_URL_CHARS + 1024  # a JSON body that names a URL


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == \
        "application/json"


def url_input_off(vendor_code: str) -> VendorError:
    return VendorError(ErrorCode.INVALID_PARAMETER, vendor_code,
                       "Reading from a URL is turned off on this server; send the file "
                       "as the body (application/octet-stream).")


async def fetched(url: object, settings: Settings, vendor_code: str) -> bytes:
    """The document at ``url`` (fetch.py's guards), if the operator turned URL input on;
    each refusal as the vendor's ``vendor_code``."""
    if not settings.url_input:
        raise url_input_off(vendor_code)
    if not isinstance(url, str) or not url:
        raise VendorError(ErrorCode.INVALID_PARAMETER, vendor_code, "Send the URL as a string.")
    try:
        return await run_in_threadpool(fetch, url, settings.max_file_bytes)
    except InputRejected as refused:
        if refused.code is not ErrorCode.INVALID_PARAMETER:
            raise
        raise VendorError(refused.code, vendor_code, refused.detail) from None

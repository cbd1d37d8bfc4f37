"""Azure AI Document Intelligence, ``prebuilt-read`` (api-version 2024-11-30), as
``azure-ai-documentintelligence`` calls it: ``begin_analyze_document`` (and its poller),
``get_analyze_result_pdf`` and ``delete_analyze_result``.

Errors are DI's wrapped ``{"error": {"code", "message", "innererror"?}}``. Spans index
``content`` as the request's ``stringIndexType`` counts: code points for
``unicodeCodePoint`` and ``textElements`` (grapheme clusters: the same for text without
combining sequences), UTF-16 units for ``utf16CodeUnit``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ocrvault.api.compat.common import (
    VendorError,
    azure_pages,
    base_url,
    fetched,
    is_json,
    iso,
    subscription_key_caller,
    vendor_route,
)
from ocrvault.api.compat.languages import from_bcp47
from ocrvault.api.deps import JobServiceDep, SettingsDep, UploadBudgetDep
from ocrvault.api.routes.read import upload_of
from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, OcrVaultError
from ocrvault.ingest.pages import MAX_PAGE_SPEC_CHARS
from ocrvault.model import Document, JobStatus, Line, OutputFormat, Page
from ocrvault.principal import Principal, Scope

PREFIX = "/documentintelligence/documentModels"
MODEL = "prebuilt-read"
API_VERSION = "2024-11-30"

# DI's ``output=`` options, and the ocrvault output each is served from. None: not yet
# available here (a clear error); each becomes available with one line here once its
# renderer exists (e.g. "pdf": OutputFormat.PDF).
OUTPUTS: dict[str, OutputFormat | None] = {"pdf": OutputFormat.PDF, "figures": None}

_INNER: dict[ErrorCode, str] = {
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "InvalidContent",
    ErrorCode.CORRUPT_FILE: "InvalidContent",
    ErrorCode.ENCRYPTED_PDF: "InvalidContent",
    ErrorCode.EMPTY_FILE: "InvalidContentLength",
    ErrorCode.FILE_TOO_LARGE: "InvalidContentLength",
    ErrorCode.BODY_TOO_LARGE: "InvalidContentLength",
    ErrorCode.IMAGE_TOO_LARGE: "InvalidContentDimensions",
    ErrorCode.TOO_MANY_PAGES: "InvalidContentLength",
    ErrorCode.PAGES_OUT_OF_RANGE: "InvalidParameter",
    ErrorCode.INVALID_PARAMETER: "InvalidParameter",
}
_GONE = frozenset({ErrorCode.JOB_NOT_FOUND, ErrorCode.JOB_DELETED, ErrorCode.DATA_EXPIRED,
                   ErrorCode.NOT_FOUND, ErrorCode.OUTPUT_NOT_AVAILABLE})


def di_error(error: OcrVaultError, _request_id: str) -> Response:
    status = 404 if error.code in _GONE else error.status
    body: dict[str, Any] = {"message": error.detail}
    vendor = getattr(error, "vendor_code", None)
    if vendor is not None:
        body["code"] = vendor
    elif error.code in _INNER:
        body["code"] = "InvalidRequest"
        body["innererror"] = {"code": _INNER[error.code], "message": error.detail}
    else:
        body["code"] = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                        409: "Conflict", 429: "TooManyRequests",
                        503: "ServiceUnavailable"}.get(status, "InternalServerError")
    return JSONResponse({"error": body}, status_code=status)


router = APIRouter(prefix=PREFIX, include_in_schema=False,
                   route_class=vendor_route(di_error))

Submitter = Annotated[Principal, Depends(subscription_key_caller(Scope.READ_SUBMIT))]
Reader = Annotated[Principal, Depends(subscription_key_caller(Scope.JOBS_READ))]
Deleter = Annotated[Principal, Depends(subscription_key_caller(Scope.JOBS_DELETE))]
ApiVersion = Annotated[str, Query(alias="api-version", max_length=32,
                                  pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$")]
IndexType = Annotated[str, Query(alias="stringIndexType",
                                 pattern="^(textElements|unicodeCodePoint|utf16CodeUnit)$")]


def _model(model_id: str) -> None:
    if model_id != MODEL:
        raise VendorError(ErrorCode.NOT_FOUND, "ModelNotFound",
                          f"Model {model_id[:60]!r} does not exist; this server has "
                          f"{MODEL!r} only.")


def _outputs(requested: str | None) -> str | None:
    """The /v1 ``outputs`` for DI's ``output=``; a clear error for those not available."""
    names = [name.strip() for name in (requested or "").split(",") if name.strip()]
    formats = []
    for name in names:
        fmt = OUTPUTS.get(name)
        if fmt is None:
            raise VendorError(ErrorCode.INVALID_PARAMETER, "InvalidRequest",
                              f"output={name[:20]!r} is not available on this server yet; "
                              f"available: {sorted(k for k, v in OUTPUTS.items() if v) or 'none'}.")
        formats.append(fmt.value)
    return ",".join(formats) or None


async def _source(data: bytes, settings: Settings) -> bytes:
    """The document of a JSON body: ``base64Source``, or ``urlSource`` where URL input is
    on (fetch.py)."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and "urlSource" in body:
        return await fetched(body["urlSource"], settings, "InvalidRequest")
    if not isinstance(body, dict) or not isinstance(body.get("base64Source"), str):
        raise VendorError(ErrorCode.INVALID_PARAMETER, "InvalidRequest",
                          "Send {\"base64Source\": ...} or the file as the body.")
    try:
        return base64.b64decode(body["base64Source"], validate=True)
    except binascii.Error:
        raise VendorError(ErrorCode.INVALID_PARAMETER, "InvalidRequest",
                          "base64Source is not valid base64.") from None


@router.post("/{model_id}:analyze", status_code=202, response_class=Response,
             summary="Document Intelligence: analyze; poll the Operation-Location")
async def analyze(
    request: Request, model_id: str, jobs: JobServiceDep, settings: SettingsDep,
    caller: Submitter, budget: UploadBudgetDep, api_version: ApiVersion = API_VERSION,
    pages: Annotated[str | None, Query(max_length=MAX_PAGE_SPEC_CHARS // 2)] = None,
    locale: Annotated[str | None, Query(max_length=16)] = None,
    string_index_type: IndexType = "textElements",
    output_content_format: Annotated[str, Query(alias="outputContentFormat",
                                                pattern="^(text|markdown)$")] = "text",
    output: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    _model(model_id)
    if output_content_format != "text":
        raise VendorError(ErrorCode.INVALID_PARAMETER, "InvalidRequest",
                          "outputContentFormat=markdown is not available on this server yet; "
                          "use text.")
    params = jobs.params(from_bcp47(locale), azure_pages(pages), _outputs(output))
    wrapped = is_json(request)
    # A base64 body is a third larger than the file it carries.
    limit = settings.max_file_bytes * 4 // 3 + 1024 if wrapped else settings.max_file_bytes
    async with upload_of(request, jobs, caller, budget, limit) as upload:
        data = await _source(upload.data, settings) if wrapped else upload.data
        job = await run_in_threadpool(jobs.submit, caller, data, params,
                                      None if wrapped else upload.declared_type)
    query = {"api-version": api_version}
    if string_index_type != "textElements":  # the poller keeps the URL as given
        query["stringIndexType"] = string_index_type
    location = (f"{base_url(request)}{PREFIX}/{MODEL}/analyzeResults/{job.id}?"
                f"{urlencode(query)}")
    return Response(status_code=202,
                    headers={"Operation-Location": location, "Retry-After": "1"})


def _measure(index_type: str) -> Callable[[str], int]:
    if index_type == "utf16CodeUnit":
        return lambda text: len(text.encode("utf-16-le")) // 2
    return len


def _word_offsets(line: Line) -> list[int] | None:
    """Where each word starts in the line's text, in order; None if one is not there."""
    found, cursor = [], 0
    for word in line.words:
        at = line.text.find(word.text, cursor)
        if at < 0:
            return None
        found.append(at)
        cursor = at + len(word.text)
    return found


def analyze_result(document: Document, index_type: str) -> dict[str, Any]:
    """``document`` as DI's ``analyzeResult``: every line of every page in ``content``,
    joined by newlines, and each page, line and word spanning its own text in it."""
    measure = _measure(index_type)
    parts: list[str] = []
    offset = 0
    pages = []
    for page in document.pages:
        page_start = offset
        lines: list[dict[str, Any]] = []
        words: list[dict[str, Any]] = []
        for line in page.lines:
            if parts:
                parts.append("\n")
                offset += 1
            starts = _word_offsets(line)
            text = line.text if starts is not None else " ".join(w.text for w in line.words)
            if starts is None:
                starts = _word_offsets(line.model_copy(update={"text": text})) or []
            parts.append(text)
            lines.append({"content": text, "polygon": line.polygon,
                          "spans": [{"offset": offset, "length": measure(text)}]})
            words.extend({"content": word.text, "polygon": word.polygon,
                          "confidence": word.confidence,
                          "span": {"offset": offset + measure(text[:at]),
                                   "length": measure(word.text)}}
                         for word, at in zip(line.words, starts, strict=True))
            offset += measure(text)
        pages.append(_page(page, lines, words, page_start, offset))
    return {"apiVersion": API_VERSION, "modelId": MODEL, "stringIndexType": index_type,
            "content": "".join(parts), "contentFormat": "text", "pages": pages,
            "styles": []}


def _page(page: Page, lines: list[dict[str, Any]], words: list[dict[str, Any]],
          start: int, end: int) -> dict[str, Any]:
    # A page's span starts at its first line (the newline before it is the previous page's).
    first = lines[0]["spans"][0]["offset"] if lines else start
    return {"pageNumber": page.number, "angle": page.angle, "width": page.width,
            "height": page.height, "unit": page.unit,
            "spans": [{"offset": first, "length": end - first}] if lines else [],
            "words": words, "lines": lines}


_STATUS = {JobStatus.QUEUED: "notStarted", JobStatus.RUNNING: "running",
           JobStatus.SUCCEEDED: "succeeded", JobStatus.FAILED: "failed"}


@router.get("/{model_id}/analyzeResults/{result_id}",
            summary="Document Intelligence: status and result")
def get_result(model_id: str, result_id: str, jobs: JobServiceDep, caller: Reader,
               api_version: ApiVersion = API_VERSION,
               string_index_type: IndexType = "textElements") -> dict[str, Any]:
    _model(model_id)
    view = jobs.get(caller, result_id)
    job = view.job
    if job.status is JobStatus.SUCCEEDED and view.result is None:
        raise VendorError(ErrorCode.DATA_EXPIRED, "NotFound",
                          "The result was deleted under its retention policy.")
    body: dict[str, Any] = {"status": _STATUS[job.status], "createdDateTime": iso(job.created_at),
                            "lastUpdatedDateTime": iso(job.completed_at or job.created_at)}
    if job.error is not None:
        body["error"] = {"code": "InternalServerError" if job.error.code.startswith(
            "processing") else "InvalidRequest", "message": job.error.detail or job.error.code,
            "innererror": {"code": job.error.code, "message": job.error.detail}}
    if view.result is not None:
        body["analyzeResult"] = analyze_result(view.result, string_index_type)
    return body


@router.delete("/{model_id}/analyzeResults/{result_id}", status_code=204,
               response_class=Response,
               summary="Document Intelligence: delete the result (the same deletion as /v1)")
def delete_result(model_id: str, result_id: str, jobs: JobServiceDep, caller: Deleter,
                  api_version: ApiVersion = API_VERSION) -> Response:
    _model(model_id)
    jobs.delete(caller, result_id)
    return Response(status_code=204)


@router.get("/{model_id}/analyzeResults/{result_id}/pdf", response_class=Response,
            summary="Document Intelligence: the searchable PDF asked for with output=pdf")
def get_pdf(model_id: str, result_id: str, jobs: JobServiceDep, caller: Reader,
            api_version: ApiVersion = API_VERSION) -> Response:
    _model(model_id)
    fmt = OUTPUTS["pdf"]
    if fmt is None:
        raise VendorError(ErrorCode.OUTPUT_NOT_AVAILABLE, "NotFound",
                          "Searchable PDF output is not available on this server yet.")
    return Response(jobs.output(caller, result_id, fmt), media_type=fmt.media_type)

"""Azure AI Vision Read 3.2, as ``azure-cognitiveservices-vision-computervision`` calls it:
``read_in_stream`` / ``get_read_result``, and the Read container's ``syncAnalyze``.

Errors are Azure's flat ``{"code", "message", "requestId"}`` (the SDK's
``ComputerVisionOcrError``: it needs both ``code`` and ``message``).

Coordinates are page pixels for every input; Azure gives PDF pages in inches, which needs
each page's rendering resolution, and the result does not carry it yet.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ocrvault.api.body import Upload
from ocrvault.api.compat.common import (
    URL_BODY_LIMIT,
    VendorError,
    azure_pages,
    base_url,
    fetched,
    is_json,
    iso,
    subscription_key_caller,
    url_input_off,
    vendor_route,
)
from ocrvault.api.compat.languages import from_bcp47
from ocrvault.api.deps import JobServiceDep, SettingsDep, UploadBudgetDep
from ocrvault.api.limits import UploadBudget
from ocrvault.api.routes.read import upload_of
from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, OcrVaultError
from ocrvault.ingest.pages import MAX_PAGE_SPEC_CHARS
from ocrvault.jobs.service import JobService
from ocrvault.model import Document, JobStatus
from ocrvault.principal import Principal, Scope

PREFIX = "/vision/v3.2/read"
READ_VERSION = "3.2.0"
MODEL_VERSION = "2022-04-30"

_CODES: dict[ErrorCode, str] = {
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "InvalidImageFormat",
    ErrorCode.CORRUPT_FILE: "InvalidImageFormat",
    ErrorCode.ENCRYPTED_PDF: "InvalidImageFormat",
    ErrorCode.EMPTY_FILE: "InvalidImageSize",
    ErrorCode.FILE_TOO_LARGE: "InvalidImageSize",
    ErrorCode.BODY_TOO_LARGE: "InvalidImageSize",
    ErrorCode.IMAGE_TOO_LARGE: "InvalidImageSize",
    ErrorCode.TOO_MANY_PAGES: "InvalidImageSize",
    ErrorCode.PAGES_OUT_OF_RANGE: "InvalidPageRange",
    ErrorCode.INVALID_PARAMETER: "BadArgument",
    ErrorCode.PROCESSING_TIMEOUT: "Timeout",
    ErrorCode.UNAUTHORIZED: "Unauthorized",
    ErrorCode.RATE_LIMITED: "TooManyRequests",
    ErrorCode.QUOTA_EXCEEDED: "TooManyRequests",
    ErrorCode.SERVER_BUSY: "ServiceUnavailable",
}
# A job deleted, or expired under retention, answers as Azure does for an unknown operation.
UNKNOWN_OPERATION = frozenset({ErrorCode.JOB_NOT_FOUND, ErrorCode.JOB_DELETED,
                               ErrorCode.DATA_EXPIRED, ErrorCode.NOT_FOUND})


def azure_error(error: OcrVaultError, request_id: str) -> Response:
    if error.code in UNKNOWN_OPERATION:
        code, status = "NotFound", 404
    elif error.status == 403:
        code, status = "Forbidden", 403
    else:
        code, status = _CODES.get(error.code, "InternalServerError"), error.status
    code = getattr(error, "vendor_code", code)
    headers = {"WWW-Authenticate": 'Bearer realm="Ocp-Apim-Subscription-Key"'} \
        if status == 401 else None
    return JSONResponse({"code": code, "message": error.detail, "requestId": request_id},
                        status_code=status, headers=headers)


router = APIRouter(prefix=PREFIX, include_in_schema=False,
                   route_class=vendor_route(azure_error))

Submitter = Annotated[Principal, Depends(subscription_key_caller(Scope.READ_SUBMIT))]
Reader = Annotated[Principal, Depends(subscription_key_caller(Scope.JOBS_READ))]

class ReadOptions:
    """The query of analyze and syncAnalyze: ``language``, ``pages``, ``model-version`` (or
    ``modelVersion``) and ``readingOrder``; the model version and order are accepted as
    Azure names them and change nothing here."""

    def __init__(
        self,
        language: Annotated[str | None, Query(max_length=16)] = None,
        pages: Annotated[str | None, Query(max_length=MAX_PAGE_SPEC_CHARS // 2)] = None,
        model_version: Annotated[str | None, Query(alias="model-version", max_length=32,
                                                   pattern=r"^(latest|\d{4}-\d{2}-\d{2})"
                                                   r"(-preview)?$")] = None,
        model_version_camel: Annotated[str | None, Query(
            alias="modelVersion", max_length=32,
            pattern=r"^(latest|\d{4}-\d{2}-\d{2})(-preview)?$")] = None,
        reading_order: Annotated[str | None, Query(alias="readingOrder",
                                                   pattern="^(basic|natural)$")] = None,
    ) -> None:
        self.languages = from_bcp47(language)
        self.pages = azure_pages(pages)


Options = Annotated[ReadOptions, Depends()]


@asynccontextmanager
async def _document(request: Request, jobs: JobService, caller: Principal,
                    budget: UploadBudget, settings: Settings, limit: int
                    ) -> AsyncIterator[Upload]:
    """The body's file, or the one at the URL of a JSON body ``{"url": ...}``."""
    if not is_json(request):
        async with upload_of(request, jobs, caller, budget, limit) as upload:
            yield upload
        return
    if not settings.url_input:  # before reading the body: nothing of it is needed
        raise url_input_off("InvalidImageUrl")
    async with upload_of(request, jobs, caller, budget, URL_BODY_LIMIT) as body:
        try:
            url = json.loads(body.data).get("url")
        except (ValueError, UnicodeDecodeError, AttributeError):
            url = None
        yield Upload(await fetched(url, settings, "InvalidImageUrl"), None)


@router.post("/analyze", status_code=202, response_class=Response,
             summary="Azure Read 3.2: submit; poll the Operation-Location")
async def analyze(request: Request, jobs: JobServiceDep, settings: SettingsDep,
                  caller: Submitter, budget: UploadBudgetDep, options: Options) -> Response:
    params = jobs.params(options.languages, options.pages, None)
    async with _document(request, jobs, caller, budget, settings,
                         settings.max_file_bytes) as upload:
        job = await run_in_threadpool(jobs.submit, caller, upload.data, params,
                                      upload.declared_type)
    location = f"{base_url(request)}{PREFIX}/analyzeResults/{job.id}"
    return Response(status_code=202, headers={"Operation-Location": location})


_STATUS = {JobStatus.QUEUED: "notStarted", JobStatus.RUNNING: "running",
           JobStatus.SUCCEEDED: "succeeded", JobStatus.FAILED: "failed"}


def read_results(document: Document) -> dict[str, Any]:
    """The ``analyzeResult`` of ``document``, in page pixels."""
    return {
        "version": READ_VERSION, "modelVersion": MODEL_VERSION,
        "readResults": [{
            "page": page.number, "angle": page.angle, "width": page.width,
            "height": page.height, "unit": page.unit,
            "lines": [{
                "boundingBox": line.polygon, "text": line.text,
                "words": [{"boundingBox": word.polygon, "text": word.text,
                           "confidence": word.confidence} for word in line.words],
            } for line in page.lines],
        } for page in document.pages],
    }


def operation(status: str, created: datetime, updated: datetime,
              document: Document | None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "createdDateTime": iso(created),
                            "lastUpdatedDateTime": iso(updated)}
    if document is not None:
        body["analyzeResult"] = read_results(document)
    return body


@router.get("/analyzeResults/{operation_id}", summary="Azure Read 3.2: status and result")
def analyze_results(operation_id: str, jobs: JobServiceDep, caller: Reader) -> dict[str, Any]:
    view = jobs.get(caller, operation_id)
    job = view.job
    if job.status is JobStatus.SUCCEEDED and view.result is None:  # expired under retention
        raise VendorError(ErrorCode.DATA_EXPIRED, "NotFound",
                          "The operation's result was deleted under its retention policy.")
    return operation(_STATUS[job.status], job.created_at, job.completed_at or job.created_at,
                     view.result)


@router.post("/syncAnalyze", summary="Azure Read container: read one page and answer at once")
async def sync_analyze(request: Request, jobs: JobServiceDep, settings: SettingsDep,
                       caller: Submitter, budget: UploadBudgetDep,
                       options: Options) -> dict[str, Any]:
    params = jobs.params(options.languages, options.pages, None)
    started = jobs.clock()
    with jobs.sync_slot(caller):
        async with _document(request, jobs, caller, budget, settings,
                             settings.max_sync_file_bytes) as upload:
            document = await run_in_threadpool(jobs.read_sync, caller, upload.data, params,
                                               upload.declared_type)
    return operation("succeeded", started, jobs.clock(), document)

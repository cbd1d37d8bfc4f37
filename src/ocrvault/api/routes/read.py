"""Submitting documents: asynchronous jobs and small synchronous reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from ocrvault.api.body import FILE_FIELD, Upload, receive_upload
from ocrvault.api.deps import (
    AuthFirstRoute,
    CustomerKeyDep,
    JobServiceDep,
    SettingsDep,
    UploadBudgetDep,
    WebhookServiceDep,
    require_scope,
)
from ocrvault.api.limits import Reservation, UploadBudget
from ocrvault.api.schemas import JobCreated, problems
from ocrvault.errors import InputRejected
from ocrvault.ingest.pages import MAX_PAGE_SPEC_CHARS
from ocrvault.jobs.params import MAX_PDF_PASSWORD_CHARS
from ocrvault.jobs.service import JobService
from ocrvault.model import Document
from ocrvault.principal import Principal, Scope
from ocrvault.retention.policy import MAX_RETENTION_CHARS, parse_retention
from ocrvault.webhooks.ssrf import MAX_URL_CHARS

router = APIRouter(prefix="/v1", tags=["read"], route_class=AuthFirstRoute)

_UPLOAD: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file as the raw body, or as the multipart field 'file'.",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}

Languages = Annotated[str | None, Query(
    description="Language codes joined by ',' or '+' (a '+' that arrives as a space works "
    "too), e.g. 'eng,deu'; GET /v1/languages lists them")]
Engine = Annotated[str | None, Query(
    max_length=16,
    description="OCR engine: 'auto' (RapidOCR for eng/chi_sim, else Tesseract), 'tesseract' or "
    "'rapidocr'; default the deployment's. A language the engine cannot read is refused.",
)]
Pages = Annotated[str | None, Query(max_length=MAX_PAGE_SPEC_CHARS,
                                    description="Pages of a PDF or TIFF, e.g. '1-3,5'")]
Outputs = Annotated[str | None, Query(
    max_length=64,
    description="Outputs to render and keep, comma-separated: 'text', 'hocr', 'alto', 'pdf' "
    "(searchable PDF); 'json' (the result) is always there. Fetch each at "
    "/v1/jobs/{id}/outputs/{fmt}; one not asked for here answers 409 output_not_requested.",
)]
PdfText = Annotated[str | None, Query(
    max_length=16,
    description="Text of PDF pages: 'auto' (default: a born-digital page's own text layer, "
    "OCR for scanned pages and untrustworthy layers), 'ocr' (every page) or 'extract' "
    "(any text layer). Each page of the result says its 'source'.",
)]
PdfProfileParam = Annotated[str | None, Query(
    max_length=16, description="The searchable PDF's profile: 'default' or 'pdfa-2b'")]
PdfPassword = Annotated[str | None, Query(
    max_length=MAX_PDF_PASSWORD_CHARS,
    description="The password of an encrypted PDF. Kept only sealed, with the input, until "
    "the job has finished; never logged or returned.",
)]
Retention = Annotated[str | None, Query(
    max_length=MAX_RETENTION_CHARS,
    description="Keep the result and outputs for less than the policy: seconds or an ISO 8601 "
    "duration such as 'PT1H'. Longer than the policy is refused.",
)]
CallbackUrl = Annotated[str | None, Query(
    max_length=MAX_URL_CHARS,
    description="Send this job's webhooks to this endpoint only; it must be the URL of one of "
    "the tenant's registered webhook endpoints in this environment",
)]
Submitter = Annotated[Principal, Depends(require_scope(Scope.READ_SUBMIT))]


async def _upload(request: Request, jobs: JobService, caller: Principal, limit: int,
                  reservation: Reservation, field: bytes | None) -> Upload:
    """The request's file; a body refused before it was read in full is audited too."""
    try:
        return await receive_upload(request, limit, reservation, field)
    except InputRejected as error:
        await run_in_threadpool(jobs.record_rejection, caller, error.code, None, None)
        raise


@asynccontextmanager
async def upload_of(request: Request, jobs: JobService, caller: Principal,
                    budget: UploadBudget, limit: int,
                    field: bytes | None = FILE_FIELD) -> AsyncIterator[Upload]:
    """The request's file (at most ``limit`` bytes), held in the caller's upload budget
    while the block runs. The one way in for uploads: /v1 and the vendor doors of
    api/compat/ alike."""
    async with budget.hold(caller.tenant_id) as reservation:
        yield await _upload(request, jobs, caller, limit, reservation, field)


@router.post(
    "/read", status_code=202, response_model=JobCreated, openapi_extra=_UPLOAD,
    responses=problems(400, 401, 403, 408, 413, 415, 422, 429, 503),
    summary="Submit a document for OCR; poll the job at the Location header",
)
async def submit_read(request: Request, response: Response, jobs: JobServiceDep,
                      settings: SettingsDep, caller: Submitter,
                      budget: UploadBudgetDep, webhooks: WebhookServiceDep,
                      languages: Languages = None,
                      pages: Pages = None, outputs: Outputs = None,
                      pdf_password: PdfPassword = None, retention: Retention = None,
                      engine: Engine = None, pdf_text: PdfText = None,
                      pdf_profile: PdfProfileParam = None,
                      customer: CustomerKeyDep = None,
                      callback_url: CallbackUrl = None) -> JobCreated:
    params = jobs.params(languages, pages, outputs, pdf_password, engine,
                         pdf_text=pdf_text, pdf_profile=pdf_profile)
    keep_for = parse_retention(retention)
    callback = None if callback_url is None else await run_in_threadpool(
        webhooks.callback_endpoint, caller, callback_url)
    async with upload_of(request, jobs, caller, budget, settings.max_file_bytes) as upload:
        job = await run_in_threadpool(jobs.submit, caller, upload.data, params,
                                      upload.declared_type, keep_for, customer, callback)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobCreated(id=job.id, status=job.status, created_at=job.created_at,
                      expires_at=job.expires_at)


@router.post(
    "/read:sync", response_model=Document, openapi_extra=_UPLOAD,
    responses=problems(400, 401, 403, 408, 413, 415, 422, 429, 503),
    summary="OCR one page or image (at most 20 MB) and return the result; nothing is stored",
)
async def read_sync(request: Request, jobs: JobServiceDep, settings: SettingsDep,
                    caller: Submitter, budget: UploadBudgetDep, languages: Languages = None,
                    pages: Pages = None, pdf_password: PdfPassword = None,
                    engine: Engine = None, pdf_text: PdfText = None) -> Document:
    params = jobs.params(languages, pages, None, pdf_password, engine, pdf_text=pdf_text)
    with jobs.sync_slot(caller):
        async with upload_of(request, jobs, caller, budget,
                             settings.max_sync_file_bytes) as upload:
            return await run_in_threadpool(jobs.read_sync, caller, upload.data, params,
                                           upload.declared_type)

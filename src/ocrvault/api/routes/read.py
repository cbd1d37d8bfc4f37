"""Submitting documents: asynchronous jobs and small synchronous reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from ocrvault.access.principal import Principal, Scope
from ocrvault.api.body import read_upload
from ocrvault.api.deps import RuntimeDep, require_scope
from ocrvault.api.schemas import JobCreated, problems
from ocrvault.model import Document

router = APIRouter(prefix="/v1", tags=["read"])

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

Languages = Annotated[
    str | None, Query(description="Tesseract language codes joined by '+', e.g. 'eng+deu'")
]
Pages = Annotated[str | None, Query(description="Pages of a PDF or TIFF, e.g. '1-3,5'")]
Outputs = Annotated[str | None, Query(description="Outputs to render and keep: 'text'")]
Submitter = Annotated[Principal, Depends(require_scope(Scope.READ_SUBMIT))]


@router.post(
    "/read", status_code=202, response_model=JobCreated, openapi_extra=_UPLOAD,
    responses=problems(400, 401, 403, 413, 415, 422),
    summary="Submit a document for OCR; poll the job at the Location header",
)
async def submit_read(request: Request, response: Response, rt: RuntimeDep, caller: Submitter,
                      languages: Languages = None, pages: Pages = None,
                      outputs: Outputs = None) -> JobCreated:
    params = rt.jobs.params(languages, pages, outputs)
    data = await read_upload(request, rt.settings.max_file_bytes)
    job = await run_in_threadpool(rt.jobs.submit, caller, data, params)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobCreated(id=job.id, status=job.status, created_at=job.created_at,
                      expires_at=job.expires_at)


@router.post(
    "/read:sync", response_model=Document, openapi_extra=_UPLOAD,
    responses=problems(400, 401, 403, 413, 415, 422),
    summary="OCR one page or image (at most 20 MB) and return the result; nothing is stored",
)
async def read_sync(request: Request, rt: RuntimeDep, caller: Submitter,
                    languages: Languages = None, pages: Pages = None) -> Document:
    params = rt.jobs.params(languages, pages, None)
    data = await read_upload(request, rt.settings.max_sync_file_bytes)
    return await run_in_threadpool(rt.jobs.read_sync, data, params)

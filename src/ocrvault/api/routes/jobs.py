"""Reading, fetching outputs of, and deleting jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from ocrvault.access.principal import Principal, Scope
from ocrvault.api.deps import RuntimeDep, require_scope
from ocrvault.api.schemas import JobPublic, problems
from ocrvault.model import DeletionReceipt, OutputFormat

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

Reader = Annotated[Principal, Depends(require_scope(Scope.JOBS_READ))]
Deleter = Annotated[Principal, Depends(require_scope(Scope.JOBS_DELETE))]


@router.get("/{job_id}", response_model=JobPublic, responses=problems(401, 403, 404, 410),
            summary="A job's status and, once it has succeeded, its result")
def get_job(job_id: str, rt: RuntimeDep, caller: Reader) -> JobPublic:
    view = rt.jobs.get(caller, job_id)
    job = view.job
    return JobPublic(
        id=job.id, status=job.status, created_at=job.created_at, completed_at=job.completed_at,
        expires_at=job.expires_at, languages=job.languages, outputs=job.outputs,
        page_count=job.page_count, error=job.error, result=view.result,
    )


@router.get(
    "/{job_id}/outputs/{fmt}", response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **problems(401, 403, 404, 409, 410)},
    summary="One rendered output of a succeeded job",
)
def get_output(job_id: str, fmt: OutputFormat, rt: RuntimeDep, caller: Reader) -> Response:
    return Response(rt.jobs.output(caller, job_id, fmt), media_type=fmt.media_type)


@router.delete("/{job_id}", response_model=DeletionReceipt,
               responses=problems(401, 403, 404, 410),
               summary="Delete the input, result and every output now, and destroy the key")
def delete_job(job_id: str, rt: RuntimeDep, caller: Deleter) -> DeletionReceipt:
    return rt.jobs.delete(caller, job_id)

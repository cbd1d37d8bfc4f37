"""Reading, fetching outputs of, and deleting jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from ocrvault.api.deps import AuthFirstRoute, CustomerKeyDep, JobServiceDep, require_scope
from ocrvault.api.schemas import JobList, JobPublic, JobSummary, Timestamp, problems
from ocrvault.jobs.listing import (
    DEFAULT_PAGE,
    LISTED_BY_DEFAULT,
    MAX_CURSOR_CHARS,
    MAX_PAGE,
    JobQuery,
)
from ocrvault.model import DeletionReceipt, JobStatus, OutputFormat
from ocrvault.principal import Principal, Scope

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=AuthFirstRoute)

Reader = Annotated[Principal, Depends(require_scope(Scope.JOBS_READ))]
Deleter = Annotated[Principal, Depends(require_scope(Scope.JOBS_DELETE))]


@router.get("", response_model=JobList, responses=problems(400, 401, 403, 429),
            summary="The caller's jobs, newest first: metadata only, never results")
def list_jobs(
    jobs: JobServiceDep, caller: Reader,
    status: Annotated[list[JobStatus] | None, Query(
        description="Only jobs in these statuses (repeat the parameter); default every "
        "status but 'deleted'")] = None,
    since: Annotated[Timestamp | None, Query(description="Jobs created at or after")] = None,
    until: Annotated[Timestamp | None, Query(description="Jobs created before")] = None,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS,
                                        description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> JobList:
    page = jobs.list_jobs(caller, JobQuery(
        statuses=tuple(status or LISTED_BY_DEFAULT), since=since, until=until, cursor=cursor,
        limit=limit))
    return JobList(jobs=[JobSummary.of(job) for job in page.jobs], next_cursor=page.next_cursor)


@router.get("/{job_id}", response_model=JobPublic,
            responses=problems(400, 401, 403, 404, 410, 429),
            summary="A job's status and, once it has succeeded, its result")
def get_job(job_id: str, jobs: JobServiceDep, caller: Reader,
            customer: CustomerKeyDep = None) -> JobPublic:
    view = jobs.get(caller, job_id, customer)
    return JobPublic(**JobSummary.of(view.job).model_dump(), result=view.result)


@router.get(
    "/{job_id}/outputs/{fmt}", response_class=Response,
    responses={200: {"content": {fmt.media_type.split(";")[0]: {} for fmt in OutputFormat}},
               **problems(400, 401, 403, 404, 409, 410, 429)},
    summary="One rendered output of a succeeded job: json and text always, hocr, alto and "
    "pdf when asked for at submission (else 409 output_not_requested)",
)
def get_output(job_id: str, fmt: OutputFormat, jobs: JobServiceDep, caller: Reader,
               customer: CustomerKeyDep = None) -> Response:
    return Response(jobs.output(caller, job_id, fmt, customer), media_type=fmt.media_type)


@router.delete("/{job_id}", response_model=DeletionReceipt,
               responses=problems(401, 403, 404, 410, 429),
               summary="Delete the input, result and every output now, and destroy the key")
def delete_job(job_id: str, jobs: JobServiceDep, caller: Deleter) -> DeletionReceipt:
    return jobs.delete(caller, job_id)


class BulkDeletion(BaseModel):
    deleted: int = Field(description="How many jobs were deleted")
    ids: list[str]


@router.delete("", response_model=BulkDeletion, responses=problems(400, 401, 403, 429),
               summary="Delete every job created before a time, optionally of given statuses")
def delete_jobs(
    jobs: JobServiceDep, caller: Deleter,
    before: Annotated[Timestamp, Query(description="Jobs created before this time")],
    status: Annotated[list[JobStatus] | None, Query(
        description="Only jobs in these statuses (repeat the parameter); default all")] = None,
) -> BulkDeletion:
    ids = jobs.delete_matching(caller, before, status or list(JobStatus))
    return BulkDeletion(deleted=len(ids), ids=ids)

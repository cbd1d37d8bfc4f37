"""ABBYY Cloud OCR SDK: v1 (XML, at the root, as ABBYY serves it) and v2 (JSON, under
``/v2``), as the PyPI ``abbyy`` client and ABBYY's samples call them.

HTTP Basic: the user name is free text (the old Application ID), the password an
ocrvault API key. ABBYY's ``resultUrl`` is a signed, short-lived link (``jobs/links.py``)
to one output of one job; it works without an Authorization header, acts as the key that
made it, checked anew, and ends with the job.

Departures, by design: ``submitImage`` queues the image at once (ocrvault has no
"submitted but not started" job), so ``processDocument`` returns the task as it stands;
``description`` is echoed, not kept; ``txtUnstructured`` is served as ``txt``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from xml.etree import ElementTree

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ocrvault.api.compat.common import VendorError, base_url, basic_caller, iso, vendor_route
from ocrvault.api.compat.languages import from_abbyy
from ocrvault.api.deps import (
    AccessServiceDep,
    JobServiceDep,
    ResultLinksDep,
    SettingsDep,
    UploadBudgetDep,
    request_context,
)
from ocrvault.api.routes.read import upload_of
from ocrvault.api.schemas import Timestamp
from ocrvault.errors import ErrorCode, OcrVaultError, ResourceError
from ocrvault.jobs.links import MAX_LINK_CHARS, ResultLinks
from ocrvault.jobs.listing import MAX_PAGE, JobQuery
from ocrvault.jobs.params import MAX_PDF_PASSWORD_CHARS
from ocrvault.model import Job, JobStatus, OutputFormat
from ocrvault.principal import Principal, Scope

# ABBYY's export formats (lower-cased) and the ocrvault output each is served from. None:
# not available here yet, a clear error; each becomes available with one line here once
# its renderer exists (e.g. "alto": OutputFormat.ALTO, "pdfsearchable": OutputFormat.PDF).
EXPORTS: dict[str, OutputFormat | None] = {
    "txt": OutputFormat.TEXT, "txtunstructured": OutputFormat.TEXT,
    "xml": None, "alto": OutputFormat.ALTO, "pdfsearchable": OutputFormat.PDF,
    "pdftextandimages": OutputFormat.PDF,
}
MAX_EXPORTS = 3
# Each output's ABBYY name in result links and listings (the first name that maps to it).
_EXPORT_NAME: dict[OutputFormat, str] = {
    fmt: name for name, fmt in reversed(EXPORTS.items()) if fmt is not None}
INVALID_PARAMETERS = 450  # ABBYY's status for a request whose parameters it refuses

_STATUS = {JobStatus.QUEUED: "Queued", JobStatus.RUNNING: "InProgress",
           JobStatus.SUCCEEDED: "Completed", JobStatus.FAILED: "ProcessingFailed",
           JobStatus.DELETED: "Deleted"}


def _status_of(error: OcrVaultError) -> int:
    if error.code in (ErrorCode.JOB_NOT_FOUND, ErrorCode.NOT_FOUND):
        return 404
    if error.code in (ErrorCode.JOB_DELETED, ErrorCode.DATA_EXPIRED):
        return 410
    return INVALID_PARAMETERS if error.status in (400, 415, 422) else error.status


def _auth_headers(status: int) -> dict[str, str] | None:
    return {"WWW-Authenticate": 'Basic realm="ocrvault"'} if status == 401 else None


def v1_error(error: OcrVaultError, _request_id: str) -> Response:
    root = ElementTree.Element("error")
    ElementTree.SubElement(root, "message", language="english").text = error.detail
    status = _status_of(error)
    return Response(_xml(root), status_code=status, media_type="application/xml",
                    headers=_auth_headers(status))


def v2_error(error: OcrVaultError, request_id: str) -> Response:
    status = _status_of(error)
    body = {"error": {"code": getattr(error, "vendor_code", error.code.value),
                      "message": error.detail, "requestId": request_id}}
    return JSONResponse(body, status_code=status, headers=_auth_headers(status))


def _xml(root: ElementTree.Element) -> bytes:
    # ElementTree escapes attribute values and text (&amp; &lt; &quot;).
    text: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return text


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    status: str
    registered: datetime
    changed: datetime
    pages: int
    pages_left: int
    result_urls: tuple[str, ...] = ()
    description: str = ""

    def fields(self) -> dict[str, str]:
        """v1's attributes, in ABBYY's order (the client pairs resultUrl* with formats)."""
        values = {"id": self.id, "registrationTime": iso(self.registered),
                  "statusChangeTime": iso(self.changed), "status": self.status,
                  "filesCount": "1", "credits": str(self.pages),
                  # Seconds until it is worth asking again: clients sleep this long.
                  "estimatedProcessingTime": str(max(1, self.pages_left) if self.active
                                                 else 0)}
        for number, url in enumerate(self.result_urls, 1):
            values["resultUrl" if number == 1 else f"resultUrl{number}"] = url
        values["description"] = self.description
        return values

    @property
    def active(self) -> bool:
        return self.status in ("Queued", "InProgress")

    def json(self) -> dict[str, Any]:
        return {"taskId": self.id, "registrationTime": iso(self.registered),
                "statusChangeTime": iso(self.changed), "status": self.status,
                "filesCount": 1, "credits": self.pages,
                "requestStatusDelay": 1000 * max(1, self.pages_left) if self.active else 0,
                "resultUrls": list(self.result_urls), "description": self.description}


def task_of(job: Job, urls: tuple[str, ...] = (), description: str = "") -> Task:
    pages = job.page_count or 0
    return Task(job.id, _STATUS[job.status], job.created_at, job.completed_at or job.created_at,
                pages, max(0, pages - job.pages_done), urls, description)


def deleted_task(job_id: str, now: datetime) -> Task:
    return Task(job_id, "Deleted", now, now, 0, 0)


def _result_urls(request: Request, links: ResultLinks, caller: Principal,
                 job: Job) -> tuple[str, ...]:
    if job.status is not JobStatus.SUCCEEDED or "result" in job.expired:
        return ()
    base = base_url(request)
    return tuple(f"{base}{RESULTS}/{links.sign(caller, job.id, _EXPORT_NAME[fmt])}"
                 for fmt in job.outputs if fmt in _EXPORT_NAME)


def export_outputs(export_format: str | None) -> str:
    """The /v1 ``outputs`` for ABBYY's ``exportFormat`` (up to three, any case)."""
    names = [n.strip() for n in (export_format or "txt").split(",") if n.strip()]
    if not names or len(names) > MAX_EXPORTS:
        raise _invalid(f"Give one to {MAX_EXPORTS} export formats.")
    formats = []
    for name in names:
        if name.lower() not in EXPORTS:
            raise _invalid(f"Export format {name[:30]!r} is not supported; supported: "
                           "txt, txtUnstructured, xml, alto, pdfSearchable, pdfTextAndImages.")
        fmt = EXPORTS[name.lower()]
        if fmt is None:
            available = sorted({k for k, v in EXPORTS.items() if v is not None})
            raise _invalid(f"Export format {name!r} is not available on this server yet; "
                           f"available now: {', '.join(available)}.")
        formats.append(fmt.value)
    return ",".join(dict.fromkeys(formats))


def _invalid(detail: str) -> VendorError:
    return VendorError(ErrorCode.INVALID_PARAMETER, "InvalidParameter", detail)


Submitter = Annotated[Principal, Depends(basic_caller(Scope.READ_SUBMIT))]
Reader = Annotated[Principal, Depends(basic_caller(Scope.JOBS_READ))]
Deleter = Annotated[Principal, Depends(basic_caller(Scope.JOBS_DELETE))]
TaskId = Annotated[str, Query(alias="taskId", max_length=64)]

RESULTS = "/abbyy/results"


@dataclass(frozen=True)
class Dialect:
    prefix: str
    error: Callable[[OcrVaultError, str], Response]
    tasks: Callable[[list[Task]], Response]


def _v1_tasks(tasks: list[Task]) -> Response:
    root = ElementTree.Element("response")
    for task in tasks:
        ElementTree.SubElement(root, "task", task.fields())
    return Response(_xml(root), media_type="application/xml")


def _v2_tasks(tasks: list[Task]) -> Response:
    return JSONResponse({"tasks": [task.json() for task in tasks]})


def _v2_task(tasks: list[Task]) -> Response:
    return JSONResponse(tasks[0].json()) if len(tasks) == 1 else _v2_tasks(tasks)


def _router(dialect: Dialect, single: Callable[[list[Task]], Response]) -> APIRouter:
    """The task endpoints in ``dialect``: the same calls, v1's XML or v2's JSON."""
    router = APIRouter(prefix=dialect.prefix, include_in_schema=False,
                       route_class=vendor_route(dialect.error))

    async def process(
        request: Request, jobs: JobServiceDep, settings: SettingsDep, caller: Submitter,
        budget: UploadBudgetDep,
        language: Annotated[str | None, Query(max_length=200)] = None,
        export_format: Annotated[str | None, Query(alias="exportFormat", max_length=100)] = None,
        description: Annotated[str, Query(max_length=200)] = "",
        pdf_password: Annotated[str | None, Query(alias="pdfPassword",
                                                  max_length=MAX_PDF_PASSWORD_CHARS)] = None,
        profile: Annotated[str | None, Query(max_length=40)] = None,
        text_type: Annotated[str | None, Query(alias="textType", max_length=100)] = None,
        correct_orientation: Annotated[bool, Query(alias="correctOrientation")] = True,
    ) -> Response:
        params = jobs.params(from_abbyy(language), None, export_outputs(export_format),
                             pdf_password)
        async with upload_of(request, jobs, caller, budget, settings.max_file_bytes,
                             field=None) as upload:
            job = await run_in_threadpool(jobs.submit, caller, upload.data, params,
                                          upload.declared_type)
        return single([task_of(job, description=description)])

    for path in ("/processImage", "/submitImage"):
        router.add_api_route(path, process, methods=["POST"], response_class=Response,
                             summary=f"ABBYY {path[1:]}: OCR the uploaded image or PDF")

    def status(request: Request, task_id: TaskId, jobs: JobServiceDep, caller: Reader,
               links: ResultLinksDep) -> Response:
        try:
            job = jobs.status(caller, task_id)
        except ResourceError as error:
            if error.code is not ErrorCode.JOB_DELETED:
                raise
            return single([deleted_task(task_id, jobs.clock())])
        return single([task_of(job, _result_urls(request, links, caller, job))])

    for path in ("/getTaskStatus", "/processDocument"):
        router.add_api_route(path, status, methods=["GET", "POST"], response_class=Response,
                             summary=f"ABBYY {path[1:]}: a task's status and result URLs")

    def listing(finished: bool) -> Callable[..., Response]:
        statuses = (JobStatus.SUCCEEDED, JobStatus.FAILED) if finished else (
            JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED)

        def list_tasks(
            jobs: JobServiceDep, caller: Reader,
            from_date: Annotated[Timestamp | None, Query(alias="fromDate")] = None,
            to_date: Annotated[Timestamp | None, Query(alias="toDate")] = None,
            exclude_deleted: Annotated[bool, Query(alias="excludeDeleted")] = False,
        ) -> Response:
            """The newest tasks (one page of the /v1 listing), as ABBYY lists them."""
            wanted = statuses if finished or exclude_deleted else (*statuses, JobStatus.DELETED)
            page = jobs.list_jobs(caller, JobQuery(statuses=wanted, since=from_date,
                                                   until=to_date, limit=MAX_PAGE))
            return dialect.tasks([task_of(job) for job in page.jobs])

        return list_tasks

    router.add_api_route("/listTasks", listing(False), methods=["GET"],
                         response_class=Response, summary="ABBYY listTasks")
    router.add_api_route("/listFinishedTasks", listing(True), methods=["GET"],
                         response_class=Response, summary="ABBYY listFinishedTasks")

    def delete(task_id: TaskId, jobs: JobServiceDep, caller: Deleter) -> Response:
        receipt = jobs.delete(caller, task_id)
        return single([deleted_task(receipt.id, receipt.deleted_at)])

    router.add_api_route("/deleteTask", delete, methods=["GET", "POST"],
                         response_class=Response,
                         summary="ABBYY deleteTask: the same deletion as DELETE /v1/jobs/{id}")
    return router


v1_router = _router(Dialect("", v1_error, _v1_tasks), _v1_tasks)
v2_router = _router(Dialect("/v2", v2_error, _v2_tasks), _v2_task)

results_router = APIRouter(prefix=RESULTS, include_in_schema=False,
                           route_class=vendor_route(v1_error))


@results_router.get("/{token}", response_class=Response,
                    summary="ABBYY resultUrl: one output of one job, by signed link")
def result(request: Request, token: Annotated[str, Path(max_length=MAX_LINK_CHARS)],
           jobs: JobServiceDep, access: AccessServiceDep, links: ResultLinksDep) -> Response:
    link = links.open(token)
    fmt = EXPORTS.get(link.output.lower())
    if fmt is None:
        raise ResourceError(ErrorCode.NOT_FOUND, "This result link is invalid or has expired.")
    caller = access.authenticate_link(link.tenant_id, link.key_id, link.environment,
                                      request_context(request), Scope.JOBS_READ)
    return Response(jobs.output(caller, link.job_id, fmt), media_type=fmt.media_type)

"""What a caller can do with jobs: submit, read, fetch outputs, delete, read synchronously.

Every method takes the caller's Principal and finds jobs only through the
tenant-scoped repository, so another tenant's job is "not found", never
"forbidden". No FastAPI here: the routes translate HTTP to these calls.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from ocrvault.access.principal import Principal
from ocrvault.clock import Clock, utcnow
from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, InputRejected, ResourceError
from ocrvault.jobs.deletion import Shredder
from ocrvault.jobs.params import ReadParams
from ocrvault.jobs.pipeline import OcrPipeline
from ocrvault.jobs.queue import JobQueue
from ocrvault.model import (
    DeletionReceipt,
    Document,
    Job,
    JobError,
    JobStatus,
    OutputFormat,
)
from ocrvault.render import render
from ocrvault.store.db import Database
from ocrvault.store.documents import JobKey, ObjectKind, SealedDocuments
from ocrvault.store.repository import JobRepository
from ocrvault.store.tables import JobRow


@dataclass(frozen=True, slots=True)
class JobView:
    job: Job
    result: Document | None


def job_of(row: JobRow) -> Job:
    error = JobError(code=row.error_code, detail=row.error_detail or "") if row.error_code else None
    return Job(
        id=row.id, tenant_id=row.tenant_id, status=JobStatus(row.status),
        created_at=row.created_at, completed_at=row.completed_at, expires_at=row.expires_at,
        languages=list(row.languages), outputs=[OutputFormat(o) for o in row.outputs],
        page_count=row.page_count, error=error,
    )


def key_of(row: JobRow) -> JobKey:
    return JobKey(row.tenant_id, row.id, row.wrapped_dek)


class JobService:
    def __init__(self, settings: Settings, db: Database, documents: SealedDocuments,
                 pipeline: OcrPipeline, queue: JobQueue, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.db = db
        self.documents = documents
        self.pipeline = pipeline
        self.queue = queue
        self.clock = clock
        self.shredder = Shredder(db, documents, clock)
        # Synchronous reads get their own threads, so each keeps its engine loaded
        # and a burst of them cannot starve the asynchronous workers.
        self._sync_pool = ThreadPoolExecutor(max(1, settings.workers), "ocr-sync")

    def params(self, languages: str | None, pages: str | None, outputs: str | None) -> ReadParams:
        return ReadParams.parse(languages, pages, outputs, self.pipeline.engine.languages(),
                                self.settings.default_languages)

    def submit(self, principal: Principal, data: bytes, params: ReadParams) -> Job:
        checked = self.pipeline.check(data, params)
        now = self.clock()
        job_id = str(uuid.uuid4())
        wrapped, master_version = self.documents.new_wrapped_key(principal.tenant_id, job_id)
        row = JobRow(
            id=job_id, tenant_id=principal.tenant_id, api_key_id=principal.key_id,
            environment=principal.environment.value, status=JobStatus.QUEUED.value,
            created_at=now, expires_at=now + timedelta(seconds=self.settings.result_ttl_seconds),
            languages=list(params.languages), page_selection=checked.pages,
            outputs=[o.value for o in params.outputs], input_format=checked.info.format.value,
            input_bytes=len(data), page_count=len(checked.pages), attempts=0,
            wrapped_dek=wrapped, master_key_version=master_version,
            stored_objects=[ObjectKind.INPUT.value],
        )
        # Sealed input first: a crash before the row commits leaves only ciphertext
        # whose key was never stored, which nothing can open.
        self.documents.put(key_of(row), ObjectKind.INPUT, data)
        with self.db.transaction() as session:
            JobRepository(session).add(row)
        self.queue.enqueue(job_id)
        return job_of(row)

    def _owned(self, principal: Principal, job_id: str) -> JobRow:
        with self.db.transaction() as session:
            row = JobRepository(session).for_owner(
                job_id, principal.tenant_id, principal.environment.value
            )
        if row is None:
            raise ResourceError(ErrorCode.JOB_NOT_FOUND, f"No job {job_id[:40]!r} for this key.")
        if row.status == JobStatus.DELETED:
            raise ResourceError(ErrorCode.JOB_DELETED, "The job and its data have been deleted.")
        return row

    def get(self, principal: Principal, job_id: str) -> JobView:
        row = self._owned(principal, job_id)
        result = None
        if row.status == JobStatus.SUCCEEDED:
            raw = self.documents.get(key_of(row), ObjectKind.RESULT)
            result = Document.model_validate_json(raw)
        return JobView(job_of(row), result)

    def output(self, principal: Principal, job_id: str, fmt: OutputFormat) -> bytes:
        row = self._owned(principal, job_id)
        if row.status != JobStatus.SUCCEEDED:
            raise ResourceError(
                ErrorCode.JOB_NOT_FINISHED,
                f"The job is {row.status}; outputs exist once it has succeeded.",
            )
        if fmt.value in row.outputs:
            return self.documents.get(key_of(row), ObjectKind.output(fmt))
        document = Document.model_validate_json(self.documents.get(key_of(row), ObjectKind.RESULT))
        return render(document, fmt)

    def delete(self, principal: Principal, job_id: str) -> DeletionReceipt:
        row = self._owned(principal, job_id)
        return self.shredder.purge(row.id)

    def read_sync(self, data: bytes, params: ReadParams) -> Document:
        """OCR one small page and return it; nothing of it is stored anywhere."""
        if len(data) > self.settings.max_sync_file_bytes:
            raise InputRejected(
                ErrorCode.FILE_TOO_LARGE,
                f"Synchronous reads take at most {self.settings.max_sync_file_bytes} bytes; "
                "submit larger files to POST /v1/read.",
            )
        checked = self.pipeline.check(data, params)
        if len(checked.pages) > 1:
            raise InputRejected(
                ErrorCode.FILE_TOO_LARGE,
                "Synchronous reads take one page; select one with 'pages' or submit the "
                "document to POST /v1/read.",
            )
        return self._sync_pool.submit(self.pipeline.run, data, checked, params).result()

    def close(self) -> None:
        self._sync_pool.shutdown(wait=True)

    @staticmethod
    def result_json(document: Document) -> bytes:
        return json.dumps(document.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")

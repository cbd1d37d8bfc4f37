"""Processing one queued job: claim, open the input in memory, OCR, seal, finish.

A job is claimed with an atomic status change, so two workers never run it.
Its input is deleted when it finishes, successful or not: the file is kept only
as long as the work needs it. A job whose process died on it three times is
failed instead of being retried forever.

Its pages are read on the shared :class:`~ocrvault.jobs.pages.PagePool` when there is
one (every worker on one job's pages, in turn with other jobs'), else one after another
on this thread; either way the result is assembled once, in page order, here. A job
deleted while it runs starts no further page.

While it runs, the job row counts the pages done (``pages_done``), written as pages
complete but at most every PROGRESS_INTERVAL seconds: a 500-page PDF of fast pages
costs a handful of small updates, not 500.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditSink, Outcome
from ocrvault.clock import Clock
from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, OcrVaultError
from ocrvault.ingest.types import FileFormat
from ocrvault.jobs.pages import JobWithdrawn, PagedJob, PagePool
from ocrvault.jobs.params import ReadParams
from ocrvault.jobs.pipeline import (
    CheckedInput,
    DocumentReader,
    OcrPipeline,
    PageProgress,
    PageResult,
)
from ocrvault.jobs.service import key_of, with_declared_type
from ocrvault.model import JobStatus, OutputFormat
from ocrvault.render import render
from ocrvault.retention.policy import Expiries, ceiling_for
from ocrvault.retention.shredder import next_due, policy_of
from ocrvault.store.commands import FinishJob
from ocrvault.store.db import Database
from ocrvault.store.documents import SUBMISSION_KINDS, ObjectKind, SealedDocuments
from ocrvault.store.records import JobRecord
from ocrvault.store.repository import JobRepository

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
PROGRESS_INTERVAL = 0.5  # seconds between two progress writes of one job


class JobWorker:
    def __init__(self, settings: Settings, db: Database, documents: SealedDocuments,
                 pipeline: OcrPipeline, clock: Clock, *, audit: AuditSink,
                 pages: PagePool | None = None) -> None:
        self.settings = settings
        self.pages = pages
        self.db = db
        self.documents = documents
        self.pipeline = pipeline
        self.clock = clock
        self.audit = audit

    def process(self, job_id: str) -> None:
        with self.db.transaction() as session:
            jobs = JobRepository(session)
            if not jobs.claim(job_id, self.clock()):
                return
            row = jobs.by_id(job_id)
        assert row is not None
        if row.attempts > MAX_ATTEMPTS:
            self._finish(row, [], ErrorCode.PROCESSING_FAILED,
                         "Processing stopped the worker repeatedly; the job was abandoned.")
            return
        log.info("job %s started (attempt %d)", job_id, row.attempts)
        try:
            stored = self._run(row)
        except JobWithdrawn:
            # Deleted while running: the finish below finds it no longer running and
            # removes whatever it left.
            self._finish(row, [], ErrorCode.PROCESSING_FAILED, "The job was deleted.")
        except OcrVaultError as error:
            self._finish(row, [], error.code, error.detail)
        except Exception:
            log.exception("job %s failed unexpectedly", job_id)
            self._finish(row, [], ErrorCode.PROCESSING_FAILED,
                         "Processing failed unexpectedly; the error was logged.")
        else:
            self._finish(row, stored, None, None)

    def _run(self, job: JobRecord) -> list[ObjectKind]:
        key = key_of(job)
        data = self.documents.get(key, ObjectKind.INPUT)
        password = self._submitted(job, ObjectKind.PDF_PASSWORD)
        declared = self._submitted(job, ObjectKind.DECLARED_TYPE)
        outputs = tuple(OutputFormat(o) for o in job.outputs)
        params = ReadParams(languages=job.languages, outputs=outputs,
                            pdf_password=password,
                            engine=self._submitted(job, ObjectKind.ENGINE))
        # Checked at submission: the bytes are those sealed then, so no second inspection.
        assert job.input_format is not None, "every submission records its sniffed format"
        checked = CheckedInput(FileFormat(job.input_format), list(job.page_selection or []),
                               job.pages_requested, job.pages_missing)
        with self.pipeline.open(data, checked, params, key=job.id) as reader:
            document = with_declared_type(reader.assemble(self._read(job, reader)),
                                          declared, checked.format)
        self.documents.put(key, ObjectKind.RESULT, document.model_dump_json().encode())
        stored = [ObjectKind.RESULT]
        for fmt in outputs:
            self.documents.put(key, ObjectKind.output(fmt), render(document, fmt))
            stored.append(ObjectKind.output(fmt))
        return stored

    def _read(self, job: JobRecord, reader: DocumentReader) -> list[PageResult]:
        """Every page of the job, in order: on the page pool, or here without one (or
        with no page threads: ``workers`` 0, where a caller runs jobs itself)."""
        progress = self._progress(job.id)
        if self.pages is not None and self.pages.running:
            return self.pages.run(PagedJob(job.id, job.tenant_id, reader.count, reader.read,
                                           partial(self._wanted, job.id)), progress)
        results = []
        for index in range(reader.count):
            results.append(reader.read(index))
            progress(index + 1, reader.count)
        return results

    def _wanted(self, job_id: str) -> bool:
        """Whether the job is still running here (not deleted, not finished elsewhere)."""
        with self.db.transaction() as session:
            row = JobRepository(session).by_id(job_id)
        return row is not None and row.status is JobStatus.RUNNING

    def _progress(self, job_id: str,
                  monotonic: Callable[[], float] = time.monotonic) -> PageProgress:
        """Record pages done on the job row, at most every PROGRESS_INTERVAL seconds; the
        last page is recorded by :meth:`_finish`."""
        last_write = -math.inf

        def advance(done: int, total: int) -> None:
            nonlocal last_write
            now = monotonic()
            if done >= total or now - last_write < PROGRESS_INTERVAL:
                return
            last_write = now
            with self.db.transaction() as session:
                JobRepository(session).record_progress(job_id, done)

        return advance

    def _submitted(self, job: JobRecord, kind: ObjectKind) -> str | None:
        """A sealed request parameter stored beside the input, if the job has one."""
        if kind.value not in job.stored_objects:
            return None
        return self.documents.get(key_of(job), kind).decode("utf-8")

    def _finish(self, job: JobRecord, stored: list[ObjectKind], code: ErrorCode | None,
                detail: str | None) -> None:
        now = self.clock()
        status = JobStatus.FAILED if code else JobStatus.SUCCEEDED
        expiries = Expiries.at_completion(policy_of(job), now, code is None).capped_at(
            ceiling_for(job.environment, job.created_at))
        keep_input = expiries.input is not None and expiries.input > now
        submitted = [k for k in job.stored_objects if ObjectKind(k) in SUBMISSION_KINDS]
        finish = FinishJob(
            job.id, status, completed_at=now, expires_at=expiries.result,
            input_expires_at=expiries.input, outputs_expires_at=expiries.outputs,
            metadata_expires_at=expiries.job_metadata,
            error_code=code.value if code else None, error_detail=detail,
            pages_done=job.page_count if code is None else job.pages_done,
            stored_objects=(*(k.value for k in stored), *(submitted if keep_input else ())),
            # From now on only the customer's key opens the job.
            drop_wrapped_dek=job.customer_wrapped_dek is not None,
        )
        finish = replace(finish, next_expiry_at=next_due(finish.applied_to(job)))
        with self.db.transaction() as session:
            still_ours = JobRepository(session).finish_running(finish)
            if still_ours:
                self.audit.record(AuditEvent(
                    AuditAction.JOB_PROCESSED,
                    Actor.system("worker", job.tenant_id, job.environment),
                    target_id=job.id, outcome=Outcome.FAILURE if code else Outcome.SUCCESS,
                    reason=code,
                ), session)
        if not keep_input:  # the input and its password: kept only as long as the policy says
            for kind in SUBMISSION_KINDS:
                self.documents.delete(job.tenant_id, job.id, kind)
        if not still_ours:
            # Deleted while running: what was just written must not outlive the job.
            self.documents.delete_all(job.tenant_id, job.id)
        log.info("job %s %s%s", job.id, status.value, f" ({code.value})" if code else "")

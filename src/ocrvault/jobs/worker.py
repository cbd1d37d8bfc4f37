"""Processing one queued job: claim, open the input in memory, OCR, seal, finish.

A job is claimed under a lease (jobs/leases.py): an atomic status change that names
this claim as the job's holder, renewed while the job runs. Its outcome is recorded
only while the claim still holds the lease, so a job that two workers ran (one thought
dead) is stored once. Its input is deleted when it finishes, successful or not: the
file is kept only as long as the work needs it. A job whose worker died on it
MAX_ATTEMPTS times is failed instead of being retried forever.

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

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditSink, Outcome
from ocrvault.clock import Clock
from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, OcrVaultError
from ocrvault.ingest.types import FileFormat
from ocrvault.jobs.leases import Lease, LeaseKeeper, LeaseLost
from ocrvault.jobs.params import ReadParams
from ocrvault.jobs.pipeline import CheckedInput, OcrPipeline, PageProgress
from ocrvault.jobs.service import key_of, with_declared_type
from ocrvault.model import JobStatus, OutputFormat
from ocrvault.retention.policy import Expiries, ceiling_for
from ocrvault.retention.shredder import next_due, policy_of
from ocrvault.store.commands import FinishJob
from ocrvault.store.db import Database
from ocrvault.store.documents import SUBMISSION_KINDS, ObjectKind, SealedDocuments
from ocrvault.store.records import JobRecord
from ocrvault.store.repository import JobRepository
from ocrvault.webhooks.events import EventType, queue_job_event

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
PROGRESS_INTERVAL = 0.5  # seconds between two progress writes of one job


class JobWorker:
    def __init__(self, settings: Settings, db: Database, documents: SealedDocuments,
                 pipeline: OcrPipeline, clock: Clock, *, audit: AuditSink,
                 leases: LeaseKeeper | None = None) -> None:
        self.settings = settings
        self.db = db
        self.documents = documents
        self.pipeline = pipeline
        self.clock = clock
        self.audit = audit
        self.leases = leases or LeaseKeeper(db, clock, settings.job_lease_seconds)

    def process(self, job_id: str) -> None:
        """Run the job if it is queued (else someone else has it, or it is done)."""
        lease = self.leases.claim(job_id)
        if lease is None:
            return
        with self.leases.kept(lease):
            try:
                self._process(lease)
            except LeaseLost:
                log.warning("job %s: this worker no longer holds it (it was deleted, or its "
                            "lease ran out and passed on); its work on it is dropped", job_id)

    def _process(self, lease: Lease) -> None:
        with self.db.transaction() as session:
            job = JobRepository(session).by_id(lease.job_id)
        assert job is not None
        if job.attempts > MAX_ATTEMPTS:
            self._finish(job, lease, [], ErrorCode.PROCESSING_FAILED,
                         "Processing stopped the worker repeatedly; the job was abandoned.")
            return
        log.info("job %s started (attempt %d)", job.id, job.attempts)
        try:
            stored = self._run(job, lease)
        except LeaseLost:
            raise
        except OcrVaultError as error:
            self._finish(job, lease, [], error.code, error.detail)
        except Exception:
            log.exception("job %s failed unexpectedly", job.id)
            self._finish(job, lease, [], ErrorCode.PROCESSING_FAILED,
                         "Processing failed unexpectedly; the error was logged.")
        else:
            self._finish(job, lease, stored, None, None)

    def _run(self, job: JobRecord, lease: Lease) -> list[ObjectKind]:
        key = key_of(job)
        data = self.documents.get(key, ObjectKind.INPUT)
        password = self._submitted(job, ObjectKind.PDF_PASSWORD)
        declared = self._submitted(job, ObjectKind.DECLARED_TYPE)
        outputs = tuple(OutputFormat(o) for o in job.outputs)
        params = ReadParams(languages=job.languages, outputs=outputs,
                            pdf_password=password,
                            engine=self._submitted(job, ObjectKind.ENGINE),
                            ).with_options(self._submitted(job, ObjectKind.READ_OPTIONS))
        # Checked at submission: the bytes are those sealed then, so no second inspection.
        assert job.input_format is not None, "every submission records its sniffed format"
        checked = CheckedInput(FileFormat(job.input_format), list(job.page_selection or []),
                               job.pages_requested, job.pages_missing)
        document = with_declared_type(
            self.pipeline.run(data, checked, params, self._progress(lease)), declared,
            checked.format)
        if self.settings.region is not None:
            document = document.model_copy(update={"region": self.settings.region})
        # A worker that lost the lease must not write: the job's new holder writes these.
        self.leases.renew(lease)
        self.documents.put(key, ObjectKind.RESULT, document.model_dump_json().encode())
        stored = [ObjectKind.RESULT]
        for fmt in outputs:  # while the input is still here: the PDF output draws it
            output = self.pipeline.render(document, data, checked, params, fmt)
            self.documents.put(key, ObjectKind.output(fmt), output)
            stored.append(ObjectKind.output(fmt))
        return stored

    def _progress(self, lease: Lease,
                  monotonic: Callable[[], float] = time.monotonic) -> PageProgress:
        """Record pages done on the job row, renewing the lease, at most every
        PROGRESS_INTERVAL seconds; the last page is recorded by :meth:`_finish`. Raises
        LeaseLost (ending the run) once the lease has passed on."""
        last_write = -math.inf

        def advance(done: int, total: int) -> None:
            nonlocal last_write
            now = monotonic()
            if done >= total or now - last_write < PROGRESS_INTERVAL:
                return
            last_write = now
            self.leases.progress(lease, done)

        return advance

    def _submitted(self, job: JobRecord, kind: ObjectKind) -> str | None:
        """A sealed request parameter stored beside the input, if the job has one."""
        if kind.value not in job.stored_objects:
            return None
        return self.documents.get(key_of(job), kind).decode("utf-8")

    def _finish(self, job: JobRecord, lease: Lease, stored: list[ObjectKind],
                code: ErrorCode | None, detail: str | None) -> None:
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
            jobs = JobRepository(session)
            still_ours = jobs.finish_running(finish, lease.holder)
            if still_ours:
                self.audit.record(AuditEvent(
                    AuditAction.JOB_PROCESSED,
                    Actor.system("worker", job.tenant_id, job.environment),
                    target_id=job.id, outcome=Outcome.FAILURE if code else Outcome.SUCCESS,
                    reason=code, detail={"region": self.settings.region}
                    if self.settings.region else None,
                ), session)
                queue_job_event(session, job, EventType.JOB_FAILED if code
                                else EventType.JOB_SUCCEEDED, status.value, now)
            current = None if still_ours else jobs.by_id(job.id)
        if not still_ours:
            if current is None or current.status == JobStatus.DELETED:
                # Deleted while running: what was just written must not outlive the job.
                self.documents.delete_all(job.tenant_id, job.id)
            # Else the lease passed to another worker, which owns the job's objects now.
            raise LeaseLost(job.id)
        if not keep_input:  # the input and its password: kept only as long as the policy says
            for kind in SUBMISSION_KINDS:
                self.documents.delete(job.tenant_id, job.id, kind)
        log.info("job %s %s%s", job.id, status.value, f" ({code.value})" if code else "")

"""Processing one queued job: claim, open the input in memory, OCR, seal, finish.

A job is claimed under a lease (jobs/leases.py): an atomic status change that names
this claim as the job's holder, renewed while the job runs. Its outcome is recorded
only while the claim still holds the lease, so a job that two workers ran (one thought
dead) is stored once. Its input is deleted when it finishes, successful or not: the
file is kept only as long as the work needs it. A job whose worker died on it
MAX_ATTEMPTS times is failed instead of being retried forever. A job that meets the key
service down (HSM unplugged, KMS unreachable) is not at fault: it goes back to the queue
for later, and that attempt does not count.

Its pages are read by every worker of the cluster on a queue that carries page tasks
(:class:`~ocrvault.jobs.spread.PageSpread`), on the node's shared
:class:`~ocrvault.jobs.pages.PagePool` otherwise (every thread on one job's pages, in turn
with other jobs'), or one after another on this thread without either; the result is
assembled once, in page order, here. A job deleted while it runs starts no further page.

While it runs, the job row counts the pages done (``pages_done``), written as pages
complete but at most every PROGRESS_INTERVAL seconds: a 500-page PDF of fast pages
costs a handful of small updates, not 500 (pages spread over a cluster are counted one
by one instead: that count is how the owner knows its helpers are done).
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
from ocrvault.crypto.master import KeyServiceUnavailable
from ocrvault.errors import ErrorCode, OcrVaultError
from ocrvault.ingest.types import FileFormat
from ocrvault.jobs.leases import Lease, LeaseKeeper, LeaseLost, new_holder
from ocrvault.jobs.pages import JobWithdrawn, PagedJob, PagePool
from ocrvault.jobs.params import ReadParams
from ocrvault.jobs.pipeline import (
    CheckedInput,
    DocumentReader,
    OcrPipeline,
    PageProgress,
    PageResult,
)
from ocrvault.jobs.queue import PageQueue
from ocrvault.jobs.rehearsal import rehearsal
from ocrvault.jobs.service import key_of, with_declared_type
from ocrvault.jobs.spread import UNEXPECTED, PageSpread
from ocrvault.model import JobStatus, OutputFormat
from ocrvault.retention.policy import Expiries, ceiling_for
from ocrvault.retention.shredder import next_due, policy_of
from ocrvault.store.commands import FinishJob
from ocrvault.store.db import Database, Transaction
from ocrvault.store.documents import SUBMISSION_KINDS, ObjectKind, SealedDocuments
from ocrvault.store.leases import LeaseRepository
from ocrvault.store.records import JobRecord
from ocrvault.store.repository import JobRepository
from ocrvault.telemetry import metrics, tracing
from ocrvault.webhooks.events import EventType, queue_job_event

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
PROGRESS_INTERVAL = 0.5  # seconds between two progress writes of one job


class JobWorker:
    def __init__(self, settings: Settings, db: Database, documents: SealedDocuments,
                 pipeline: OcrPipeline, clock: Clock, *, audit: AuditSink,
                 leases: LeaseKeeper | None = None, pages: PagePool | None = None,
                 spread_on: PageQueue | None = None) -> None:
        self.settings = settings
        self.pages = pages
        self.db = db
        self.documents = documents
        self.pipeline = pipeline
        self.clock = clock
        self.audit = audit
        self.leases = leases or LeaseKeeper(db, clock, settings.job_lease_seconds)
        self.spread = None if spread_on is None else PageSpread(
            db, documents, spread_on, tasks=settings.page_spread,
            page_timeout=settings.page_timeout_seconds, open_reader=self._open_for_help)

    def help(self, job_id: str, holder: str) -> None:
        """A page task: read a page of a job another worker holds (jobs/spread.py)."""
        if self.spread is not None:
            self.spread.help(job_id, holder)

    def process(self, job_id: str) -> None:
        """Run the job if it is queued (else someone else has it, or it is done)."""
        lease = self.leases.claim(job_id)
        if lease is None:
            return
        outage: KeyServiceUnavailable | None = None
        with self.leases.kept(lease):
            try:
                self._process(lease)
            except LeaseLost:
                log.warning("job %s: this worker no longer holds it (it was deleted, or its "
                            "lease ran out and passed on); its work on it is dropped", job_id)
            except KeyServiceUnavailable as error:
                outage = error
        if outage is not None:  # the heartbeat has stopped: it would renew the lease
            self._retry_later(lease, outage)

    def _retry_later(self, lease: Lease, outage: KeyServiceUnavailable) -> None:
        """The key service is down, not the job: its lease lapses in ``retry_after``
        seconds, its attempt uncounted, and the scheduler's reclaim requeues it then. What
        it wrote meanwhile is overwritten by the run that succeeds."""
        if self.leases.postpone(lease, outage.retry_after):
            log.warning("job %s: key service unavailable (%s); it goes back to the queue in "
                        "about %d s (with the next lease reclaim), this attempt not counted",
                        lease.job_id, outage, outage.retry_after)
        else:
            log.warning("job %s: key service unavailable (%s), and the job had passed on",
                        lease.job_id, outage)

    def _process(self, lease: Lease) -> None:
        with self.db.transaction() as session:
            job = JobRepository(session).by_id(lease.job_id)
        assert job is not None
        if job.attempts > MAX_ATTEMPTS:
            self._finish(job, lease, [], ErrorCode.PROCESSING_FAILED,
                         "Processing stopped the worker repeatedly; the job was abandoned.")
            return
        log.info("job %s started (attempt %d)", job.id, job.attempts)
        waited = (self.clock() - job.created_at).total_seconds()  # < 0 if node clocks differ
        metrics.QUEUE_WAIT_SECONDS.observe(max(0.0, waited))
        tracing.interval("queue.wait", job.created_at, attempt=job.attempts)
        try:
            with tracing.span("job", attempt=job.attempts):
                stored = self._run(job, lease)
        except (LeaseLost, KeyServiceUnavailable):  # handled by process()
            raise
        except JobWithdrawn:
            # Deleted while running: the finish below finds it no longer running and
            # removes whatever it left.
            self._finish(job, lease, [], ErrorCode.PROCESSING_FAILED, "The job was deleted.")
        except OcrVaultError as error:
            self._finish(job, lease, [], error.code, error.detail)
        except Exception:
            log.exception("job %s failed unexpectedly", job.id)
            self._finish(job, lease, [], ErrorCode.PROCESSING_FAILED, UNEXPECTED)
        else:
            self._finish(job, lease, stored, None, None)

    def _run(self, job: JobRecord, lease: Lease) -> list[ObjectKind]:
        key = key_of(job)
        data, checked, params = self._inputs(job)
        declared = self._submitted(job, ObjectKind.DECLARED_TYPE)
        with self.pipeline.open(data, checked, params, key=job.id) as reader:
            document = with_declared_type(reader.assemble(self._read(job, lease, reader)),
                                          declared, checked.format)
        if self.settings.region is not None:
            document = document.model_copy(update={"region": self.settings.region})
        # A worker that lost the lease must not write: the job's new holder writes these.
        self.leases.renew(lease)
        self.documents.put(key, ObjectKind.RESULT, document.model_dump_json().encode())
        stored = [ObjectKind.RESULT]
        for fmt in params.outputs:  # while the input is still here: the PDF output draws it
            output = self.pipeline.render(document, data, checked, params, fmt)
            self.documents.put(key, ObjectKind.output(fmt), output)
            stored.append(ObjectKind.output(fmt))
        return stored

    def _inputs(self, job: JobRecord) -> tuple[bytes, CheckedInput, ReadParams]:
        """The job's input, opened, and what reading it needs."""
        params = ReadParams(languages=job.languages,
                            outputs=tuple(OutputFormat(o) for o in job.outputs),
                            pdf_password=self._submitted(job, ObjectKind.PDF_PASSWORD),
                            engine=self._submitted(job, ObjectKind.ENGINE),
                            ).with_options(self._submitted(job, ObjectKind.READ_OPTIONS))
        # Checked at submission: the bytes are those sealed then, so no second inspection.
        assert job.input_format is not None, "every submission records its sniffed format"
        checked = CheckedInput(FileFormat(job.input_format), list(job.page_selection or []),
                               job.pages_requested, job.pages_missing)
        return self.documents.get(key_of(job), ObjectKind.INPUT), checked, params

    def _open_for_help(self, job: JobRecord, name: str) -> DocumentReader:
        """A reader of another worker's job, for the pages this one helps read."""
        return self.pipeline.open(*self._inputs(job), key=name)

    def _read(self, job: JobRecord, lease: Lease, reader: DocumentReader) -> list[PageResult]:
        """Every page of the job, in order: spread over the cluster, or on the page pool,
        or here without either (or with no page threads: ``workers`` 0, where a caller
        runs jobs itself)."""
        if self.spread is not None and reader.count > 1:
            return self.spread.read_all(key_of(job), lease.holder, reader.count, reader.read)
        progress = self._progress(lease)
        if self.pages is not None and self.pages.running:
            # Named by the claim, not the job: a job reclaimed here while a lapsed claim's
            # run still drains is a second entry in the pool, not a clash.
            paged = PagedJob(lease.holder, job.tenant_id, reader.count, reader.read,
                             partial(self._wanted, job.id))
            return self.pages.run(paged, progress)
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
        finish = self._outcome(job, stored, code, detail)
        metrics.JOBS_FINISHED.labels(state=finish.status.value).inc()
        with self.db.transaction() as session:
            still_ours = self._record_finish(session, job, finish, lease.holder, code)
            current = None if still_ours else JobRepository(session).by_id(job.id)
        if not still_ours:
            if current is None or current.status == JobStatus.DELETED:
                # Deleted while running: what was just written must not outlive the job.
                self.documents.delete_all(job.tenant_id, job.id)
            # Else the lease passed to another worker, which owns the job's objects now.
            raise LeaseLost(job.id)
        if self.spread is not None and (job.page_count or 0) > 1:  # one page: no parts
            self.documents.delete_pages(job.tenant_id, job.id)  # assembled, or not wanted
        if not finish.keeps_input:  # the input and its password: as long as the policy says
            for kind in SUBMISSION_KINDS:
                self.documents.delete(job.tenant_id, job.id, kind)
        log.info("job %s %s%s", job.id, finish.status.value, f" ({code.value})" if code else "")

    def _outcome(self, job: JobRecord, stored: list[ObjectKind], code: ErrorCode | None,
                 detail: str | None) -> FinishJob:
        """What finishing ``job`` now writes: its status, what it keeps and until when."""
        now = self.clock()
        status = JobStatus.FAILED if code else JobStatus.SUCCEEDED
        expiries = Expiries.at_completion(policy_of(job), now, code is None).capped_at(
            ceiling_for(job.environment, job.created_at))
        finish = FinishJob(
            job.id, status, completed_at=now, expires_at=expiries.result,
            input_expires_at=expiries.input, outputs_expires_at=expiries.outputs,
            metadata_expires_at=expiries.job_metadata,
            error_code=code.value if code else None, error_detail=detail,
            pages_done=job.page_count if code is None else job.pages_done,
            stored_objects=tuple(k.value for k in stored),
            # From now on only the customer's key opens the job.
            drop_wrapped_dek=job.customer_wrapped_dek is not None,
        )
        if finish.keeps_input:  # and with it what was submitted beside it
            finish = replace(finish, stored_objects=(*finish.stored_objects, *(
                k for k in job.stored_objects if ObjectKind(k) in SUBMISSION_KINDS)))
        return replace(finish, next_expiry_at=next_due(finish.applied_to(job)))

    def _record_finish(self, session: Transaction, job: JobRecord, finish: FinishJob,
                       holder: str, code: ErrorCode | None) -> bool:
        """Write ``finish`` with its audit entry and webhook event, while ``holder`` holds
        the job's lease; False (nothing written) if it no longer does."""
        if not JobRepository(session).finish_running(finish, holder):
            return False
        self.audit.record(AuditEvent(
            AuditAction.JOB_PROCESSED, Actor.system("worker", job.tenant_id, job.environment),
            target_id=job.id, outcome=Outcome.FAILURE if code else Outcome.SUCCESS,
            reason=code, detail={"region": self.settings.region}
            if self.settings.region else None,
        ), session)
        queue_job_event(session, job, EventType.JOB_FAILED if code
                        else EventType.JOB_SUCCEEDED, finish.status.value, finish.completed_at)
        return True

    def rehearse(self) -> None:
        """A job's statements on the worker's side, claim to finish, rolled back
        (jobs/rehearsal.py)."""
        with rehearsal(self.db, self.clock) as stage:
            jobs, leases = JobRepository(stage.session), LeaseRepository(stage.session)
            job_id = jobs.add(stage.job()).id
            holder, until = new_holder(), self.leases.until()
            leases.claim(job_id, stage.now, holder, until)
            jobs.record_progress(job_id, 0, holder, until)
            leases.renew(job_id, holder, until)
            job = jobs.by_id(job_id)
            assert job is not None, "claimed in this transaction"
            self._record_finish(stage.session, job, self._outcome(job, [ObjectKind.RESULT],
                                                                  None, None), holder, None)

"""What a caller can do with jobs: submit, read, fetch outputs, delete, read synchronously.

Every method takes the caller's Principal and finds jobs only through the
tenant-scoped repository, so another tenant's job is "not found", never
"forbidden"; so is another key's job for a key whose job visibility is ``own``. No
FastAPI here: the routes translate HTTP to these calls.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from ocrvault.access.quotas import QuotaGuard
from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditSink, Outcome
from ocrvault.clock import Clock, utcnow
from ocrvault.config import Settings
from ocrvault.crypto.customer_key import CustomerKey
from ocrvault.environments import Environment
from ocrvault.errors import AuthError, ErrorCode, InputRejected, ResourceError, Throttled
from ocrvault.ingest.declared import contradicts
from ocrvault.ingest.sniff import sniff
from ocrvault.ingest.types import FileFormat
from ocrvault.jobs.listing import JobQuery, Position
from ocrvault.jobs.outbox import Outbox
from ocrvault.jobs.params import ReadParams
from ocrvault.jobs.pipeline import OcrPipeline
from ocrvault.jobs.queue import JobQueue
from ocrvault.jobs.rehearsal import rehearsal
from ocrvault.model import (
    DeclaredTypeMismatch,
    DeletionReceipt,
    Document,
    Job,
    JobError,
    JobStatus,
    OutputFormat,
    PartExpiries,
)
from ocrvault.principal import Principal
from ocrvault.render import default_registry
from ocrvault.retention.policy import ceiling_for
from ocrvault.retention.service import RetentionService
from ocrvault.retention.shredder import Shredder, gone_parts, policy_of
from ocrvault.store.commands import NewJob
from ocrvault.store.db import Database, Transaction
from ocrvault.store.documents import JobKey, ObjectKind, SealedDocuments
from ocrvault.store.leases import OutboxRepository
from ocrvault.store.records import JobRecord
from ocrvault.store.repository import JobRepository
from ocrvault.store.webhooks import WebhookRepository


@dataclass(frozen=True, slots=True)
class JobView:
    job: Job
    result: Document | None


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


def job_of(job: JobRecord, now: datetime) -> Job:
    # A running job may carry the error a page of it failed with, until its owner ends it.
    error = (JobError(code=job.error_code, detail=job.error_detail or "")
             if job.error_code and job.status is not JobStatus.RUNNING else None)
    return Job(
        id=job.id, tenant_id=job.tenant_id, status=job.status,
        created_at=job.created_at, completed_at=job.completed_at, expires_at=job.expires_at,
        languages=list(job.languages), outputs=[OutputFormat(o) for o in job.outputs],
        page_count=job.page_count, pages_done=job.pages_done or 0, error=error,
        expires=PartExpiries(input=job.input_expires_at, result=job.expires_at,
                             outputs=job.outputs_expires_at,
                             job_metadata=job.metadata_expires_at),
        expired=gone_parts(job, now) if job.status.finished else [],
    )


def key_of(job: JobRecord) -> JobKey:
    """The job's key as the service holds it (the worker's and the deleter's view)."""
    return JobKey(job.tenant_id, job.id, job.wrapped_dek)


def opener(job: JobRecord, customer_key: CustomerKey | None) -> JobKey:
    """The key a caller opens the job's content with: a job made with a customer key
    opens only with that key, sent again with the request."""
    if job.customer_key_sha256 is None:
        return key_of(job)
    if customer_key is None:
        raise AuthError(ErrorCode.CUSTOMER_KEY_REQUIRED,
                        "This job was sealed with a customer key: send it in "
                        "X-Ocrvault-Customer-Key and X-Ocrvault-Customer-Key-SHA256.")
    if not customer_key.matches(job.customer_key_sha256):
        raise AuthError(ErrorCode.CUSTOMER_KEY_MISMATCH,
                        "The customer key is not the one this job was sealed with.")
    return JobKey(job.tenant_id, job.id, None, job.customer_wrapped_dek, customer_key)


class JobService:
    def __init__(self, settings: Settings, db: Database, documents: SealedDocuments,
                 pipeline: OcrPipeline, queue: JobQueue, clock: Clock = utcnow, *,
                 audit: AuditSink, quotas: QuotaGuard, retention: RetentionService) -> None:
        self.settings = settings
        self.db = db
        self.documents = documents
        self.pipeline = pipeline
        self.queue = queue
        self.clock = clock
        self.audit = audit
        self.quotas = quotas
        self.retention = retention
        self.shredder = Shredder(db, documents, clock, audit)
        self.outbox = Outbox(db, queue, clock)
        # Synchronous reads get their own threads, so each keeps its engine loaded
        # and a burst of them cannot starve the asynchronous workers.
        self._sync_pool = ThreadPoolExecutor(max(1, settings.workers), "ocr-sync")
        self._sync_reads: Counter[str] = Counter()  # per tenant, in progress
        self._sync_lock = threading.Lock()

    def params(self, languages: str | None, pages: str | None, outputs: str | None,
               pdf_password: str | None = None, engine: str | None = None, *,
               pdf_text: str | None = None, pdf_profile: str | None = None) -> ReadParams:
        return self.pipeline.params(languages, pages, outputs, self.settings.default_languages,
                                    pdf_password, engine, pdf_text=pdf_text,
                                    pdf_profile=pdf_profile)

    def record_rejection(self, principal: Principal, code: ErrorCode, size: int | None,
                         media_type: str | None) -> None:
        """Audit a refused upload by its size, sniffed type and error code: nothing of it is kept.

        The target reads ``upload:<media type>:<bytes>`` (``unknown`` where not known).
        """
        target = f"upload:{media_type or 'unknown'}:{'unknown' if size is None else size}"
        self.audit.record(AuditEvent(AuditAction.JOB_REJECTED, Actor.of(principal),
                                     target_id=target, outcome=Outcome.FAILURE, reason=code))

    @contextmanager
    def _auditing_rejection(self, principal: Principal, data: bytes) -> Iterator[None]:
        try:
            yield
        except InputRejected as error:
            self.record_rejection(principal, error.code, len(data), _sniffed_type(data))
            raise

    def submit(self, principal: Principal, data: bytes, params: ReadParams,
               declared_type: str | None = None, retention: int | None = None,
               customer_key: CustomerKey | None = None,
               callback_endpoint: str | None = None) -> Job:
        """Check ``data`` and queue it; ``declared_type`` is the client's (normalised) claim,
        ``retention`` the request's own (shorter) retention of result and outputs,
        ``customer_key`` a key of the caller's without which the result cannot be read,
        ``callback_endpoint`` the one webhook endpoint (the caller's) for its events."""
        policy = (self.retention.effective(principal.tenant_id, principal.key_id,
                                           principal.environment)
                  .for_environment(principal.environment).shortened_to(retention))
        with self._auditing_rejection(principal, data):
            checked = self.pipeline.check(data, params)
        self.quotas.admit(principal, len(checked.pages), new_job=True)
        now = self.clock()
        ceiling = ceiling_for(principal.environment, now)
        job_id = str(uuid.uuid4())
        # The DEK goes under the epoch key of the last moment its content may live.
        longest = max(policy.input, policy.result, policy.outputs, policy.failed_inputs)
        keys = self.documents.new_job_keys(principal.tenant_id, job_id, customer_key,
                                           now + timedelta(seconds=longest))
        # Beside the input, sealed under the same key: what the worker needs of the request.
        submission = {ObjectKind.INPUT: data}
        if params.pdf_password is not None:
            submission[ObjectKind.PDF_PASSWORD] = params.pdf_password.encode("utf-8")
        if declared_type is not None and contradicts(declared_type, checked.format):
            submission[ObjectKind.DECLARED_TYPE] = declared_type.encode("ascii")
        if params.engine is not None:
            submission[ObjectKind.ENGINE] = params.engine.encode("ascii")
        if (options := params.options()) is not None:
            submission[ObjectKind.READ_OPTIONS] = options
        # Sealed input first: a crash before the row commits leaves only ciphertext
        # whose key was never stored, which nothing can open.
        for kind, plaintext in submission.items():
            self.documents.put(JobKey(principal.tenant_id, job_id, keys.wrapped_dek), kind,
                               plaintext)
        with self.db.transaction() as session:
            job = self._queue(session, NewJob(
                id=job_id, tenant_id=principal.tenant_id, api_key_id=principal.key_id,
                environment=principal.environment, created_at=now,
                expires_at=now + timedelta(seconds=policy.result),
                retention=policy.as_dict(), metadata_expires_at=ceiling,
                next_expiry_at=ceiling, languages=tuple(params.languages),
                page_selection=tuple(checked.pages),
                outputs=tuple(o.value for o in params.outputs),
                input_format=checked.format.value, input_bytes=len(data),
                page_count=len(checked.pages), pages_requested=checked.requested,
                pages_missing=checked.missing, wrapped_dek=keys.wrapped_dek,
                master_key_version=keys.master_key_version, key_epoch=keys.key_epoch,
                customer_wrapped_dek=keys.customer_wrapped_dek,
                customer_key_sha256=customer_key.sha256_b64 if customer_key else None,
                stored_objects=tuple(kind.value for kind in submission),
            ), Actor.of(principal), callback_endpoint)
        # After the commit: a worker must find the row, and a rollback must send nothing.
        self.outbox.dispatch(job_id, principal.tenant_id)
        return job_of(job, now)

    def _queue(self, session: Transaction, new: NewJob, actor: Actor,
               callback_endpoint: str | None) -> JobRecord:
        """The job's row, its outbox entry and its audit entry, in ``session``."""
        job = JobRepository(session).add(new)
        self.outbox.record(session, job.id, job.tenant_id)
        self.audit.record(AuditEvent(AuditAction.JOB_SUBMITTED, actor, target_id=job.id),
                          session)
        if callback_endpoint is not None:
            WebhookRepository(session).bind_job(job.id, callback_endpoint)
        return job

    def rehearse(self) -> None:
        """A submission's and a status poll's statements, rolled back (jobs/rehearsal.py)."""
        with rehearsal(self.db, self.clock) as stage:
            self.retention.effective(stage.tenant_id, stage.tenant_id, Environment.LIVE)
            job = self._queue(stage.session, stage.job(),
                              Actor.system("rehearsal", stage.tenant_id, Environment.LIVE), None)
            JobRepository(stage.session).for_owner(job.id, job.tenant_id,
                                                   job.environment.value)
            OutboxRepository(stage.session).remove(job.id)  # as its dispatch does

    def _owned(self, principal: Principal, job_id: str) -> JobRecord:
        with self.db.transaction() as session:
            job = JobRepository(session).for_owner(
                job_id, principal.tenant_id, principal.environment.value,
                principal.job_submitter,
            )
        if job is None:
            raise ResourceError(ErrorCode.JOB_NOT_FOUND, f"No job {job_id[:40]!r} for this key.")
        if job.status == JobStatus.DELETED:
            raise ResourceError(ErrorCode.JOB_DELETED, "The job and its data have been deleted.")
        return job

    def status(self, principal: Principal, job_id: str) -> Job:
        """The job's metadata, as a listing shows it: nothing is opened, so nothing of the
        document is revealed (ABBYY's getTaskStatus)."""
        return job_of(self._owned(principal, job_id), self.clock())

    def get(self, principal: Principal, job_id: str,
            customer_key: CustomerKey | None = None) -> JobView:
        record = self._owned(principal, job_id)
        job = job_of(record, self.clock())
        result = None
        if record.status == JobStatus.SUCCEEDED and "result" not in job.expired:
            raw = self.documents.get(opener(record, customer_key), ObjectKind.RESULT)
            result = Document.model_validate_json(raw)
            self._revealed(principal, AuditAction.JOB_RESULT_READ, record.id)
        return JobView(job, result)

    def list_jobs(self, principal: Principal, query: JobQuery) -> JobPage:
        """The caller's jobs (its tenant and environment; its own only, for a key that
        sees its own jobs), newest first: metadata only, nothing is opened. Audited once
        per listing, when it starts (as the audit log's own listing is)."""
        after = query.after
        with self.db.transaction() as session:
            records = JobRepository(session).newest_first(
                principal.tenant_id, principal.environment.value,
                [s.value for s in query.statuses], submitted_by=principal.job_submitter,
                since=query.since, until=query.until,
                after=(after.created_at, after.job_id) if after else None,
                limit=query.limit + 1,
            )
        now = self.clock()
        jobs = [job_of(record, now) for record in records[: query.limit]]
        if query.cursor is None:
            self.audit.record(AuditEvent(AuditAction.JOB_LISTED, Actor.of(principal)))
        more = len(records) > query.limit
        cursor = Position(jobs[-1].created_at, jobs[-1].id).encode() if more else None
        return JobPage(jobs, cursor)

    def _revealed(self, principal: Principal, action: AuditAction, job_id: str | None) -> None:
        """Audit a read of document content; called before the content is returned."""
        self.audit.record(AuditEvent(action, Actor.of(principal), target_id=job_id))

    def output(self, principal: Principal, job_id: str, fmt: OutputFormat,
               customer_key: CustomerKey | None = None) -> bytes:
        job = self._owned(principal, job_id)
        if job.status != JobStatus.SUCCEEDED:
            raise ResourceError(
                ErrorCode.JOB_NOT_FINISHED,
                f"The job is {job.status}; outputs exist once it has succeeded.",
            )
        stored = fmt.value in job.outputs
        renderer = default_registry().get(fmt)
        if not stored and not renderer.view_of_result:
            raise ResourceError(
                ErrorCode.OUTPUT_NOT_REQUESTED,
                f"The job was not asked for '{fmt.value}' at submission, and its input is "
                f"not kept to render it now. Submit again with outputs={fmt.value}.",
            )
        expired = gone_parts(job, self.clock())
        if ("outputs" if stored else "result") in expired:
            raise ResourceError(
                ErrorCode.DATA_EXPIRED,
                f"This output was deleted under the job's retention policy (policy: "
                f"{policy_of(job).outputs if stored else policy_of(job).result} s).",
            )
        job_key = opener(job, customer_key)
        if stored:
            output = self.documents.get(job_key, ObjectKind.output(fmt))
        else:  # a view of the result (json, text), served from it
            document = Document.model_validate_json(
                self.documents.get(job_key, ObjectKind.RESULT)
            )
            output = renderer.render(document, None)
        self._revealed(principal, AuditAction.JOB_OUTPUT_READ, job.id)
        return output

    def delete(self, principal: Principal, job_id: str) -> DeletionReceipt:
        job = self._owned(principal, job_id)
        return self.shredder.purge(job.id, Actor.of(principal))

    def delete_matching(self, principal: Principal, before: datetime,
                        statuses: list[JobStatus]) -> list[str]:
        """Delete the caller's jobs created before ``before`` in ``statuses``; their ids."""
        with self.db.transaction() as session:
            ids = list(JobRepository(session).matching(
                principal.tenant_id, principal.environment.value, before,
                [s.value for s in statuses if s is not JobStatus.DELETED],
                principal.job_submitter))
        for job_id in ids:
            self.shredder.purge(job_id, Actor.of(principal))
        return ids

    @contextmanager
    def sync_slot(self, principal: Principal) -> Iterator[None]:
        """Room for one synchronous read of the caller's tenant, taken before its upload is
        read: a tenant may have ``max_sync_reads_per_tenant`` in progress, so that one
        tenant's burst waits in its own line and leaves the sync threads to others too."""
        self.pipeline.engines.ensure_runnable()  # before the upload: an API node reads none
        tenant, cap = principal.tenant_id, self.settings.max_sync_reads_per_tenant
        with self._sync_lock:
            if self._sync_reads[tenant] >= cap:
                raise Throttled(ErrorCode.QUOTA_EXCEEDED,
                                f"This tenant may have {cap} synchronous reads in progress at "
                                "once; wait for one to finish, or submit to POST /v1/read.",
                                retry_after=1)
            self._sync_reads[tenant] += 1
        try:
            yield
        finally:
            with self._sync_lock:
                self._sync_reads[tenant] -= 1
                if not self._sync_reads[tenant]:
                    del self._sync_reads[tenant]

    def read_sync(self, principal: Principal, data: bytes, params: ReadParams,
                  declared_type: str | None = None) -> Document:
        """OCR one small page and return it; nothing of it is stored anywhere."""
        with self._auditing_rejection(principal, data):
            return self._read_sync(principal, data, params, declared_type)

    def _read_sync(self, principal: Principal, data: bytes, params: ReadParams,
                   declared_type: str | None) -> Document:
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
        self.quotas.admit(principal, len(checked.pages), new_job=False)
        document = self._sync_pool.submit(self.pipeline.run, data, checked, params).result()
        document = with_declared_type(document, declared_type, checked.format)
        self._revealed(principal, AuditAction.JOB_READ_SYNC, None)
        return document

    def close(self) -> None:
        self._sync_pool.shutdown(wait=True)


def with_declared_type(document: Document, declared: str | None,
                       detected: FileFormat) -> Document:
    """``document``, noting when the client declared another type than the bytes have."""
    if declared is None or not contradicts(declared, detected):
        return document
    mismatch = DeclaredTypeMismatch(declared=declared, detected=detected.media_type)
    return document.model_copy(update={"declared_type_mismatch": mismatch})


def _sniffed_type(data: bytes) -> str | None:
    """The accepted format ``data`` starts like, for the audit trail; None if none."""
    try:
        return sniff(data).media_type
    except InputRejected:
        return None

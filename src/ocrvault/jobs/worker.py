"""Processing one queued job: claim, open the input in memory, OCR, seal, finish.

A job is claimed with an atomic status change, so two workers never run it.
Its input is deleted when it finishes, successful or not: the file is kept only
as long as the work needs it. A job whose process died on it three times is
failed instead of being retried forever.

While it runs, the job row counts the pages done (``pages_done``), written as pages
complete but at most every PROGRESS_INTERVAL seconds: a 500-page PDF of fast pages
costs a handful of small updates, not 500.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditSink, Outcome
from ocrvault.clock import Clock
from ocrvault.config import Settings
from ocrvault.environments import Environment
from ocrvault.errors import ErrorCode, OcrVaultError
from ocrvault.ingest.types import FileFormat
from ocrvault.jobs.params import ReadParams
from ocrvault.jobs.pipeline import CheckedInput, OcrPipeline, PageProgress
from ocrvault.jobs.service import key_of, with_declared_type
from ocrvault.model import JobStatus, OutputFormat
from ocrvault.retention.policy import Expiries, ceiling_for
from ocrvault.retention.shredder import next_due, policy_of
from ocrvault.store.db import Database
from ocrvault.store.documents import SUBMISSION_KINDS, ObjectKind, SealedDocuments
from ocrvault.store.repository import JobRepository
from ocrvault.store.tables import JobRow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
PROGRESS_INTERVAL = 0.5  # seconds between two progress writes of one job


class JobWorker:
    def __init__(self, settings: Settings, db: Database, documents: SealedDocuments,
                 pipeline: OcrPipeline, clock: Clock, *, audit: AuditSink) -> None:
        self.settings = settings
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
        except OcrVaultError as error:
            self._finish(row, [], error.code, error.detail)
        except Exception:
            log.exception("job %s failed unexpectedly", job_id)
            self._finish(row, [], ErrorCode.PROCESSING_FAILED,
                         "Processing failed unexpectedly; the error was logged.")
        else:
            self._finish(row, stored, None, None)

    def _run(self, row: JobRow) -> list[ObjectKind]:
        key = key_of(row)
        data = self.documents.get(key, ObjectKind.INPUT)
        password = self._submitted(row, ObjectKind.PDF_PASSWORD)
        declared = self._submitted(row, ObjectKind.DECLARED_TYPE)
        outputs = tuple(OutputFormat(o) for o in row.outputs)
        params = ReadParams(languages=tuple(row.languages), outputs=outputs,
                            pdf_password=password,
                            engine=self._submitted(row, ObjectKind.ENGINE),
                            ).with_options(self._submitted(row, ObjectKind.READ_OPTIONS))
        # Checked at submission: the bytes are those sealed then, so no second inspection.
        assert row.input_format is not None, "every submission records its sniffed format"
        checked = CheckedInput(FileFormat(row.input_format), list(row.page_selection or []),
                               row.pages_requested, row.pages_missing)
        document = with_declared_type(
            self.pipeline.run(data, checked, params, self._progress(row.id)), declared,
            checked.format)
        self.documents.put(key, ObjectKind.RESULT, document.model_dump_json().encode())
        stored = [ObjectKind.RESULT]
        for fmt in outputs:  # while the input is still here: the PDF output draws it
            output = self.pipeline.render(document, data, checked, params, fmt)
            self.documents.put(key, ObjectKind.output(fmt), output)
            stored.append(ObjectKind.output(fmt))
        return stored

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

    def _submitted(self, row: JobRow, kind: ObjectKind) -> str | None:
        """A sealed request parameter stored beside the input, if the job has one."""
        if kind.value not in row.stored_objects:
            return None
        return self.documents.get(key_of(row), kind).decode("utf-8")

    def _finish(self, row: JobRow, stored: list[ObjectKind], code: ErrorCode | None,
                detail: str | None) -> None:
        now = self.clock()
        status = JobStatus.FAILED if code else JobStatus.SUCCEEDED
        expiries = Expiries.at_completion(policy_of(row), now, code is None).capped_at(
            ceiling_for(Environment(row.environment), row.created_at))
        keep_input = expiries.input is not None and expiries.input > now
        submitted = [k for k in row.stored_objects if ObjectKind(k) in SUBMISSION_KINDS]
        outcome = {
            "status": status.value, "completed_at": now, "expires_at": expiries.result,
            "input_expires_at": expiries.input, "outputs_expires_at": expiries.outputs,
            "metadata_expires_at": expiries.job_metadata,
            "error_code": code.value if code else None, "error_detail": detail,
            "pages_done": row.page_count if code is None else row.pages_done,
            "stored_objects": [k.value for k in stored] + (submitted if keep_input else []),
        }
        if row.customer_wrapped_dek is not None:
            outcome["wrapped_dek"] = None  # from now on only the customer's key opens the job
        for name, value in outcome.items():  # on the detached copy, to work out what is due
            setattr(row, name, value)
        outcome["next_expiry_at"] = next_due(row)
        with self.db.transaction() as session:
            still_ours = JobRepository(session).finish_running(row.id, **outcome)
            if still_ours:
                self.audit.record(AuditEvent(
                    AuditAction.JOB_PROCESSED,
                    Actor.system("worker", row.tenant_id, Environment(row.environment)),
                    target_id=row.id, outcome=Outcome.FAILURE if code else Outcome.SUCCESS,
                    reason=code,
                ), session)
        if not keep_input:  # the input and its password: kept only as long as the policy says
            for kind in SUBMISSION_KINDS:
                self.documents.delete(row.tenant_id, row.id, kind)
        if not still_ours:
            # Deleted while running: what was just written must not outlive the job.
            self.documents.delete_all(row.tenant_id, row.id)
        log.info("job %s %s%s", row.id, status.value, f" ({code.value})" if code else "")

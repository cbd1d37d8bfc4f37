"""Processing one queued job: claim, open the input in memory, OCR, seal, finish.

A job is claimed with an atomic status change, so two workers never run it.
Its input is deleted when it finishes, successful or not: the file is kept only
as long as the work needs it. A job whose process died on it three times is
failed instead of being retried forever.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from ocrvault.clock import Clock
from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, OcrVaultError
from ocrvault.jobs.params import ReadParams
from ocrvault.jobs.pipeline import CheckedInput, OcrPipeline
from ocrvault.jobs.service import JobService, key_of
from ocrvault.model import JobStatus, OutputFormat
from ocrvault.render import render
from ocrvault.store.db import Database
from ocrvault.store.documents import ObjectKind, SealedDocuments
from ocrvault.store.repository import JobRepository
from ocrvault.store.tables import JobRow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


class JobWorker:
    def __init__(self, settings: Settings, db: Database, documents: SealedDocuments,
                 pipeline: OcrPipeline, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.documents = documents
        self.pipeline = pipeline
        self.clock = clock

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
        outputs = tuple(OutputFormat(o) for o in row.outputs)
        params = ReadParams(languages=tuple(row.languages), outputs=outputs)
        checked = CheckedInput(self.pipeline.ingestor.inspect(data), list(row.page_selection or []))
        document = self.pipeline.run(data, checked, params)
        self.documents.put(key, ObjectKind.RESULT, JobService.result_json(document))
        stored = [ObjectKind.RESULT]
        for fmt in outputs:
            self.documents.put(key, ObjectKind.output(fmt), render(document, fmt))
            stored.append(ObjectKind.output(fmt))
        return stored

    def _finish(self, row: JobRow, stored: list[ObjectKind], code: ErrorCode | None,
                detail: str | None) -> None:
        now = self.clock()
        status = JobStatus.FAILED if code else JobStatus.SUCCEEDED
        with self.db.transaction() as session:
            still_ours = JobRepository(session).finish_running(
                row.id, status=status.value, completed_at=now,
                expires_at=now + timedelta(seconds=self.settings.result_ttl_seconds),
                error_code=code.value if code else None, error_detail=detail,
                stored_objects=[kind.value for kind in stored],
            )
        self.documents.delete(row.tenant_id, row.id, ObjectKind.INPUT)
        if not still_ours:
            # Deleted while running: what was just written must not outlive the job.
            self.documents.delete_all(row.tenant_id, row.id)
        log.info("job %s %s%s", row.id, status.value, f" ({code.value})" if code else "")

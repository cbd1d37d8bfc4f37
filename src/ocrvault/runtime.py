"""The composition root: builds every service once from Settings, starts and stops them.

The API app, the CLI and the tests all get their parts from here, so a part is
swapped (a fake engine, a fixed clock) by passing it in, not by monkeypatching.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ocrvault.access.service import AccessService
from ocrvault.clock import Clock, utcnow
from ocrvault.config import Settings
from ocrvault.crypto import Keyring, load_keyring
from ocrvault.engines import registry
from ocrvault.engines.base import OcrEngine
from ocrvault.ingest import Ingestor
from ocrvault.ingest.sandbox import Sandbox
from ocrvault.ingest.types import Limits
from ocrvault.jobs.pipeline import OcrPipeline
from ocrvault.jobs.queue import JobQueue, LocalQueue
from ocrvault.jobs.service import JobService
from ocrvault.jobs.worker import JobWorker
from ocrvault.retention.reaper import PeriodicThread, Reaper
from ocrvault.store.blobs import LocalBlobStore
from ocrvault.store.db import Database
from ocrvault.store.documents import SealedDocuments
from ocrvault.store.repository import JobRepository

log = logging.getLogger(__name__)


def limits_of(settings: Settings) -> Limits:
    return Limits(
        max_file_bytes=settings.max_file_bytes, max_pages=settings.max_pages,
        max_page_pixels=settings.max_page_pixels, max_side_px=settings.max_side_px,
        pdf_dpi=settings.pdf_dpi,
    )


def build_pipeline(settings: Settings, engine: OcrEngine | None = None,
                   sandbox_size: int = 1) -> OcrPipeline:
    sandbox = Sandbox(
        memory_bytes=settings.decode_memory_bytes, cpu_seconds=settings.decode_cpu_seconds,
        timeout_seconds=settings.decode_timeout_seconds, size=sandbox_size,
    )
    engine = engine or registry.create("tesseract", settings)
    return OcrPipeline(Ingestor(limits_of(settings), sandbox), engine)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keyring: Keyring
    documents: SealedDocuments
    pipeline: OcrPipeline
    queue: JobQueue
    access: AccessService
    jobs: JobService
    worker: JobWorker
    reaper: Reaper
    clock: Clock
    _periodic: list[PeriodicThread] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, *, engine: OcrEngine | None = None,
              queue: JobQueue | None = None, clock: Clock = utcnow) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = Database(settings.resolved_database_url)
        db.migrate()
        keyring = load_keyring(settings)
        documents = SealedDocuments(LocalBlobStore(settings.blob_dir), keyring)
        # One sandbox child per worker and per sync thread, plus one for request-time checks.
        pipeline = build_pipeline(settings, engine, sandbox_size=2 * settings.workers + 1)
        queue = queue or LocalQueue(settings.workers)
        jobs = JobService(settings, db, documents, pipeline, queue, clock)
        worker = JobWorker(settings, db, documents, pipeline, clock)
        return cls(
            settings=settings, db=db, keyring=keyring, documents=documents, pipeline=pipeline,
            queue=queue, access=AccessService(db, clock), jobs=jobs, worker=worker,
            reaper=Reaper(db, jobs.shredder, clock), clock=clock,
        )

    def start(self) -> None:
        """Start workers, re-queue what a previous run left unfinished, start the reaper."""
        with self.db.transaction() as session:
            repository = JobRepository(session)
            requeued = repository.requeue_running()
            pending = list(repository.queued_ids())
        if pending:
            log.info("resuming %d queued jobs (%d were interrupted)", len(pending), requeued)
        self.queue.start(self.worker.process)
        for job_id in pending:
            self.queue.enqueue(job_id)
        reaper = PeriodicThread("reaper", self.settings.reaper_interval_seconds,
                                self.reaper.run_once)
        reaper.start()
        self._periodic.append(reaper)

    def stop(self) -> None:
        for thread in self._periodic:
            thread.stop()
        self._periodic.clear()
        self.queue.stop()
        self.jobs.close()
        self.pipeline.ingestor.sandbox.close()
        self.db.dispose()

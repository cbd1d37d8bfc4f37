"""The composition root: builds every service once from Settings, starts and stops them.

The API app, the CLI and the tests all get their parts from here, so a part is
swapped (a fake engine, a fixed clock) by passing it in, not by monkeypatching.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from ocrvault.access.quotas import QuotaGuard
from ocrvault.access.ratelimit import RateLimiter
from ocrvault.access.service import AccessService
from ocrvault.audit import AuditLog, AuditService, ChainSigner
from ocrvault.clock import Clock, utcnow
from ocrvault.config import Settings
from ocrvault.crypto import Keyring, load_keyring
from ocrvault.datadir import keyring_beside_data, prepare_data_dir
from ocrvault.engines import registry
from ocrvault.engines.base import OcrEngine
from ocrvault.engines.catalog import EngineCatalog
from ocrvault.ingest import Ingestor
from ocrvault.ingest.sandbox import Sandbox
from ocrvault.ingest.types import Limits
from ocrvault.jobs.leases import JobLeases
from ocrvault.jobs.pipeline import OcrPipeline
from ocrvault.jobs.queue import JobQueue, open_queue
from ocrvault.jobs.service import JobService
from ocrvault.jobs.worker import JobWorker
from ocrvault.retention.reaper import PeriodicThread, Reaper
from ocrvault.retention.service import RetentionService
from ocrvault.store.blobs import BlobStore, LocalBlobStore
from ocrvault.store.db import Database
from ocrvault.store.documents import SealedDocuments

log = logging.getLogger(__name__)


def build_pipeline(settings: Settings, engine: OcrEngine | None = None,
                   sandbox_size: int = 1, engines: EngineCatalog | None = None) -> OcrPipeline:
    """The pipeline with ``engine`` alone, or ``engines``, else every registered engine."""
    sandbox = Sandbox(
        memory_bytes=settings.decode_memory_bytes, cpu_seconds=settings.decode_cpu_seconds,
        timeout_seconds=settings.decode_timeout_seconds, size=sandbox_size,
    )
    if engines is None:
        engines = EngineCatalog.of(engine) if engine else registry.catalog(settings)
    return OcrPipeline(Ingestor(Limits.from_settings(settings), sandbox), engines)


def _log_waiting(running: int) -> None:
    log.info("waiting for %d running jobs to finish", running)


@dataclass
class Shutdown:
    """How a stop treats the jobs in progress: it waits for them, unless ``now`` is set (a
    second Ctrl-C) or ``timeout`` seconds pass. Jobs it leaves stay in the database as
    running, and the next start re-queues them; ``left`` says how many there were."""

    timeout: float | None = None
    now: threading.Event = field(default_factory=threading.Event)
    announce: Callable[[int], None] = _log_waiting
    left: int = 0


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keyring: Keyring
    documents: SealedDocuments
    pipeline: OcrPipeline
    queue: JobQueue
    access: AccessService
    audit: AuditLog
    audit_reader: AuditService
    jobs: JobService
    worker: JobWorker
    retention: RetentionService
    reaper: Reaper
    leases: JobLeases
    clock: Clock
    owns_engine: bool
    shutdown: Shutdown = field(default_factory=Shutdown)
    _periodic: list[PeriodicThread] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, *, engine: OcrEngine | None = None,
              queue: JobQueue | None = None, clock: Clock = utcnow,
              rate_limiter: RateLimiter | None = None,
              blobs: BlobStore | None = None,
              engines: EngineCatalog | None = None) -> Runtime:
        """Every service on ``settings``; sets the process umask to 077 (see datadir.py)
        and raises UnsafeDataDir for a data dir that others may read."""
        prepare_data_dir(settings.data_dir)  # first: it sets the umask for all that follows
        db = Database(settings.resolved_database_url)
        db.migrate()
        keyring = load_keyring(settings)
        if keyring_beside_data(settings):
            log.warning(
                "the keyring %s is inside the data dir: a copy of the data dir (a backup, a "
                "snapshot, a stolen disk) holds the documents and the keys that open them. Set "
                "OCRVAULT_KEYRING_PATH to a file elsewhere, or OCRVAULT_MASTER_KEY",
                settings.keyring_path)
        documents = SealedDocuments(blobs or LocalBlobStore(settings.blob_dir), keyring)
        # One sandbox child per worker and per sync thread, plus one for request-time checks.
        pipeline = build_pipeline(settings, engine, sandbox_size=2 * settings.workers + 1,
                                  engines=engines)
        queue = queue or open_queue(settings)
        audit = AuditLog(db, ChainSigner(keyring), clock,
                         timedelta(days=settings.audit_retention_days))
        retention = RetentionService(db, clock, audit)
        jobs = JobService(settings, db, documents, pipeline, queue, clock, audit=audit,
                          quotas=QuotaGuard(db, clock), retention=retention)
        worker = JobWorker(settings, db, documents, pipeline, clock, audit=audit)
        return cls(
            settings=settings, db=db, keyring=keyring, documents=documents, pipeline=pipeline,
            queue=queue, access=AccessService(db, audit, clock, rate_limiter), audit=audit,
            audit_reader=AuditService(db, audit), jobs=jobs, worker=worker, retention=retention,
            reaper=Reaper(db, jobs.shredder, clock), leases=JobLeases(db, queue, clock),
            clock=clock,
            owns_engine=engine is None and engines is None,
        )

    def start(self) -> None:
        """Start workers, re-queue what a previous run left unfinished, start the reaper."""
        self.queue.start(self.worker.process)
        self.leases.resume_at_start()
        every = self.settings.reaper_interval_seconds
        for name, interval, task in (
                ("reaper", every, self.reaper.run_once),
                ("audit-retention", every, self.audit.purge_expired),
                ("audit-refusals", every, self.access.flush_refusals),
                ("lease-reclaim", self.settings.lease_reclaim_interval_seconds,
                 self.leases.run_periodic)):
            thread = PeriodicThread(name, interval, task)
            thread.start()
            self._periodic.append(thread)

    def stop(self) -> None:
        """Stop everything, after the jobs in progress end or as ``shutdown`` says."""
        for thread in self._periodic:
            thread.stop()
        self._periodic.clear()
        if running := self.queue.running():
            self.shutdown.announce(running)
        self.shutdown.left = self.queue.stop(self.shutdown.now, self.shutdown.timeout)
        if self.shutdown.left:
            # Their workers still use the pipeline: closing it would fail their jobs, which
            # must stay running in the database for the next start to resume.
            log.warning("stopping with %d jobs unfinished; the next start resumes them",
                        self.shutdown.left)
        else:
            self.jobs.close()
            self.pipeline.ingestor.sandbox.close()
            if self.owns_engine:
                self.pipeline.engines.close()
        # Counted refusals of windows still open: recorded, not lost with the process.
        self.access.flush_refusals(everything=True)
        self.db.dispose()

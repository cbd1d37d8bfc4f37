"""Role ``worker``: takes jobs off the queue and runs them (decode sandbox, engines); no HTTP.

A worker alone needs a queue that other processes fill: the local in-process queue reaches
only its own process, so ``serve --role worker`` refuses it (see cli.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ocrvault.clock import Clock, utcnow
from ocrvault.compose.parts import Foundation, make_sandbox
from ocrvault.config import Settings
from ocrvault.engines import registry
from ocrvault.engines.base import OcrEngine
from ocrvault.engines.catalog import EngineCatalog
from ocrvault.ingest import Ingestor
from ocrvault.ingest.types import Limits
from ocrvault.jobs.leases import JobLeases
from ocrvault.jobs.pages import PagePool
from ocrvault.jobs.pipeline import OcrPipeline
from ocrvault.jobs.queue import JobQueue, PageQueue, open_queue
from ocrvault.jobs.rehearsal import rehearse
from ocrvault.jobs.worker import JobWorker
from ocrvault.store.blobs import BlobStore

log = logging.getLogger(__name__)


def build_pipeline(settings: Settings, engine: OcrEngine | None = None,
                   sandbox_size: int = 1, engines: EngineCatalog | None = None) -> OcrPipeline:
    """The pipeline with ``engine`` alone, or ``engines``, else every registered engine."""
    if engines is None:
        engines = EngineCatalog.of(engine) if engine else registry.catalog(settings)
    return OcrPipeline(Ingestor(Limits.from_settings(settings),
                                make_sandbox(settings, sandbox_size)), engines,
                       page_timeout=settings.page_timeout_seconds)


def decode_children(settings: Settings) -> int:
    """Decode children: one per OCR thread. A thread holds one only while it decodes a
    page (a tenth of the page's time), so uploads' checks and sync reads find one free
    nearly always, and wait a page's decoding at worst."""
    return max(1, settings.workers)


def close_pipeline(pipeline: OcrPipeline, *, engines: bool) -> None:
    pipeline.ingestor.sandbox.close()
    if engines:
        pipeline.engines.close()


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
class WorkerNode:
    base: Foundation
    pipeline: OcrPipeline
    queue: JobQueue
    worker: JobWorker
    pages: PagePool | None  # None on a queue that spreads pages over the cluster
    owns_engines: bool  # engines it created (not a test's), closed with it
    owns: bool = False  # whether stop() closes the pipeline and the foundation
    shutdown: Shutdown = field(default_factory=Shutdown)

    @classmethod
    def build(cls, base: Foundation, pipeline: OcrPipeline, queue: JobQueue, *,
              owns_engines: bool) -> WorkerNode:
        """The worker on ``base`` and ``pipeline``, which the caller closes."""
        if isinstance(queue, PageQueue):
            # Page tasks on the broker: the queue's threads read pages of every node's jobs.
            worker = JobWorker(base.settings, base.db, base.documents, pipeline, base.clock,
                               audit=base.audit, spread_on=queue)
            queue.take_pages(worker.help)
            return cls(base, pipeline, queue, worker, None, owns_engines)
        # One page thread per worker: the pages of the jobs the queue's threads hold open.
        pages = PagePool(base.settings.workers)
        worker = JobWorker(base.settings, base.db, base.documents, pipeline, base.clock,
                           audit=base.audit, pages=pages)
        return cls(base, pipeline, queue, worker, pages, owns_engines)

    @classmethod
    def open(cls, settings: Settings, *, engine: OcrEngine | None = None,
             engines: EngineCatalog | None = None, queue: JobQueue | None = None,
             clock: Clock = utcnow, blobs: BlobStore | None = None) -> WorkerNode:
        """Role ``worker`` on its own: refuses a database not at this code's schema."""
        base = Foundation.open(settings, migrate=False, clock=clock, blobs=blobs)
        pipeline = build_pipeline(settings, engine, decode_children(settings), engines)
        node = cls.build(base, pipeline, queue or open_queue(settings),
                         owns_engines=engine is None and engines is None)
        node.owns = True
        return node

    def start(self) -> None:
        """Start the queue's workers and hand them what a previous run left unfinished:
        on a durable (shared) queue only jobs whose lease ran out, on the local queue
        every job the last stop left queued or running (see JobLeases.resume_at_start)."""
        # Children start before the first job, not under it (a first burst waits for none).
        self.pipeline.ingestor.warm()
        rehearse(self.worker.rehearse)  # nor for its statements to compile
        # Each page thread loads its own model of the default engine now, not under the
        # first burst of jobs; engines a caller passed in (tests' fakes) are left alone.
        if self.pages is not None:
            self.pages.start(warm=self.pipeline.warm_engine if self.owns_engines else None)
        self.queue.start(self.worker.process)
        JobLeases(self.base.db, self.queue, self.base.clock).resume_at_start()

    def stop_taking_jobs(self) -> int:
        """Stop the queue after the jobs in progress end, or as ``shutdown`` says; returns
        how many it left running."""
        if running := self.queue.running():
            self.shutdown.announce(running)
        self.shutdown.left = self.queue.stop(self.shutdown.now, self.shutdown.timeout)
        if not self.shutdown.left and self.pages is not None:  # else jobs left wait on pages
            self.pages.stop()
        if self.shutdown.left:
            log.warning("stopping with %d jobs unfinished; the next start resumes them",
                        self.shutdown.left)
        return self.shutdown.left

    def stop(self) -> None:
        left = self.stop_taking_jobs()
        if self.worker.spread is not None:
            self.worker.spread.readers.close()
        if self.owns:
            # Jobs left running still use the pipeline: closing it would fail them, and
            # they must stay running in the database for the next start to resume.
            if not left:
                close_pipeline(self.pipeline, engines=self.owns_engines)
            self.base.close()

"""Role ``all``, the embedded default: the API, the workers and the scheduler in one
process, sharing one database, keyring and pipeline (compose/ builds each role's parts).

The API app, the CLI and the tests get their parts from here, so a part is swapped (a
fake engine, a fixed clock) by passing it in, not by monkeypatching.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ocrvault.access.ratelimit import RateLimiter
from ocrvault.access.service import AccessService
from ocrvault.audit import AuditService
from ocrvault.clock import Clock, utcnow
from ocrvault.compose.api import ApiNode
from ocrvault.compose.parts import Foundation, OnFoundation
from ocrvault.compose.scheduler import SchedulerNode
from ocrvault.compose.worker import (
    Shutdown,
    WorkerNode,
    build_pipeline,
    close_pipeline,
    decode_children,
)
from ocrvault.config import Settings
from ocrvault.engines.base import OcrEngine
from ocrvault.engines.catalog import EngineCatalog
from ocrvault.jobs.leases import JobLeases
from ocrvault.jobs.links import ResultLinks
from ocrvault.jobs.pipeline import OcrPipeline
from ocrvault.jobs.queue import JobQueue, open_queue
from ocrvault.jobs.service import JobService
from ocrvault.jobs.worker import JobWorker
from ocrvault.posture.service import PostureService
from ocrvault.retention.reaper import Reaper
from ocrvault.retention.service import RetentionService
from ocrvault.store.blobs import BlobStore
from ocrvault.webhooks.dispatcher import Dispatcher
from ocrvault.webhooks.service import WebhookService

__all__ = ["Runtime", "Shutdown", "build_pipeline"]


@dataclass
class Runtime(OnFoundation):
    base: Foundation
    api: ApiNode
    workers: WorkerNode
    scheduler: SchedulerNode

    @classmethod
    def build(cls, settings: Settings, *, engine: OcrEngine | None = None,
              queue: JobQueue | None = None, clock: Clock = utcnow,
              rate_limiter: RateLimiter | None = None,
              blobs: BlobStore | None = None,
              engines: EngineCatalog | None = None) -> Runtime:
        """Every service on ``settings``; migrates the schema unless
        ``settings.migrate_on_start`` is off (then SchemaNotCurrent unless it is current).
        Sets the process umask to 077 (see datadir.py) and raises UnsafeDataDir for a data
        dir that others may read."""
        base = Foundation.open(settings, migrate=settings.migrate_on_start, clock=clock,
                               blobs=blobs)
        pipeline = build_pipeline(settings, engine, sandbox_size=decode_children(settings),
                                  engines=engines)
        queue = queue or open_queue(settings)
        return cls(base=base, api=ApiNode.build(base, pipeline, queue, rate_limiter),
                   workers=WorkerNode.build(base, pipeline, queue,
                                            owns_engines=engine is None and engines is None),
                   scheduler=SchedulerNode.build(base, queue))

    def start(self) -> None:
        """Start the workers (resuming unfinished jobs), the scheduler and the API's own
        periodic work."""
        self.workers.start()
        self.scheduler.start()
        self.api.start()

    def stop(self) -> None:
        """Stop everything, after the jobs in progress end or as ``shutdown`` says."""
        self.scheduler.stop()
        left = self.workers.stop_taking_jobs()
        self.api.stop()
        if not left:
            # Jobs left running still use the pipeline: closing it would fail them, and
            # they must stay running in the database for the next start to resume.
            close_pipeline(self.pipeline, engines=self.workers.owns_engines)
        self.base.close()

    # The parts, by the names the app, the CLI and the tests use.
    @property
    def pipeline(self) -> OcrPipeline:
        return self.workers.pipeline

    @property
    def engines(self) -> EngineCatalog:
        return self.pipeline.engines

    @property
    def queue(self) -> JobQueue:
        return self.workers.queue

    @property
    def worker(self) -> JobWorker:
        return self.workers.worker

    @property
    def shutdown(self) -> Shutdown:
        return self.workers.shutdown

    @property
    def access(self) -> AccessService:
        return self.api.access

    @property
    def audit_reader(self) -> AuditService:
        return self.api.audit_reader

    @property
    def jobs(self) -> JobService:
        return self.api.jobs

    @property
    def retention(self) -> RetentionService:
        return self.api.retention

    @property
    def links(self) -> ResultLinks:
        return self.api.links

    @property
    def leases(self) -> JobLeases:
        assert self.scheduler.leases is not None, "role all always has its queue"
        return self.scheduler.leases

    @property
    def webhooks(self) -> WebhookService:
        return self.api.webhooks

    @property
    def posture(self) -> PostureService:
        return self.api.posture

    @property
    def dispatcher(self) -> Dispatcher | None:
        return self.scheduler.dispatcher

    @property
    def reaper(self) -> Reaper:
        return self.scheduler.reaper

    def probes(self) -> dict[str, Callable[[], object]]:
        """What /readyz checks: the API's parts and the default engine."""
        return {**self.api.probes(), "engine": lambda: self.pipeline.engine.languages()}

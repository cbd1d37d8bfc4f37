"""Role ``api``: HTTP only. It checks uploads (in the decode sandbox: headers, limits),
describes engines for ``languages=`` and GET /v1/engines, and never creates one; jobs go
to the queue for workers to run.

Refused requests of unknown keys are counted in this process (access/refusals.py), so the
periodic flush of their counts runs here, on every API node, not once per cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ocrvault.access.quotas import QuotaGuard
from ocrvault.access.ratelimit import RateLimiter, open_rate_limiter
from ocrvault.access.service import AccessService
from ocrvault.audit import AuditService
from ocrvault.clock import Clock, utcnow
from ocrvault.compose.parts import Foundation, OnFoundation, make_sandbox
from ocrvault.config import Settings
from ocrvault.engines import registry
from ocrvault.engines.catalog import EngineCatalog
from ocrvault.ingest import Ingestor
from ocrvault.ingest.types import Limits
from ocrvault.jobs.links import ResultLinks
from ocrvault.jobs.pipeline import OcrPipeline
from ocrvault.jobs.queue import JobQueue, open_queue
from ocrvault.jobs.rehearsal import rehearse
from ocrvault.jobs.service import JobService
from ocrvault.posture.service import PostureService
from ocrvault.retention.reaper import PeriodicThread, Reaper
from ocrvault.retention.service import RetentionService
from ocrvault.store.blobs import BlobStore
from ocrvault.webhooks.service import WebhookService
from ocrvault.webhooks.ssrf import guard_for


def checking_pipeline(settings: Settings, engines: EngineCatalog | None = None) -> OcrPipeline:
    """A pipeline for request-time checks only: one sandbox child per worker thread of
    ``settings`` reads headers; the engines of ``engines`` (default the registered ones)
    are described, never created."""
    return OcrPipeline(Ingestor(Limits.from_settings(settings),
                                make_sandbox(settings, max(1, settings.workers))),
                       (engines or registry.catalog(settings)).describing())


@dataclass
class ApiNode(OnFoundation):
    base: Foundation
    pipeline: OcrPipeline
    queue: JobQueue
    access: AccessService
    audit_reader: AuditService
    jobs: JobService
    retention: RetentionService
    links: ResultLinks  # signed result URLs of the ABBYY door
    webhooks: WebhookService
    posture: PostureService
    owns: bool = False  # whether stop() closes the pipeline and the foundation
    _flush: PeriodicThread | None = field(default=None, repr=False)

    @classmethod
    def build(cls, base: Foundation, pipeline: OcrPipeline, queue: JobQueue,
              rate_limiter: RateLimiter | None = None) -> ApiNode:
        """The API's services on ``base`` and ``pipeline``, which the caller closes."""
        retention = RetentionService(base.db, base.clock, base.audit)
        jobs = JobService(base.settings, base.db, base.documents, pipeline, queue, base.clock,
                          audit=base.audit, quotas=QuotaGuard(base.db, base.clock),
                          retention=retention)
        return cls(base=base, pipeline=pipeline, queue=queue,
                   access=AccessService(base.db, base.audit, base.clock, rate_limiter
                                        or open_rate_limiter(base.settings, base.clock),
                                        base.settings.region, base.settings.region_urls),
                   audit_reader=AuditService(base.db, base.audit), jobs=jobs,
                   retention=retention,
                   links=ResultLinks(base.keyring, base.clock, base.settings.result_link_seconds),
                   webhooks=WebhookService(base.db, base.keyring, base.audit, base.clock,
                                           guard_for(base.settings.webhook_allow_http,
                                                     base.settings.webhook_allow_cidrs)),
                   posture=PostureService(base.settings, base.db, base.keyring,
                                          base.documents.tenant_keys, pipeline.engines,
                                          base.clock))

    @classmethod
    def open(cls, settings: Settings, *, queue: JobQueue | None = None, clock: Clock = utcnow,
             rate_limiter: RateLimiter | None = None, blobs: BlobStore | None = None,
             engines: EngineCatalog | None = None) -> ApiNode:
        """Role ``api`` on its own: refuses a database not at this code's schema."""
        base = Foundation.open(settings, migrate=False, clock=clock, blobs=blobs)
        node = cls.build(base, checking_pipeline(settings, engines),
                         queue or open_queue(settings), rate_limiter)
        node.owns = True
        return node

    @property
    def engines(self) -> EngineCatalog:
        return self.pipeline.engines

    @property
    def reaper(self) -> Reaper | None:
        """None: the reaper runs on the scheduler."""
        return None

    def probes(self) -> dict[str, Callable[[], object]]:
        """What /readyz checks: what this node needs to serve."""
        return {"database": self.db.ping, "blob_store": self.documents.blobs.ping,
                "key_service": self.documents.ping_keys}

    def start(self) -> None:
        if self.owns:  # else the worker's start warms the shared sandbox
            self.pipeline.ingestor.warm()  # no first upload waits for a child
        # No first burst waits for the statements of its requests to compile, nor for
        # the engines to be described (a package's version is read from its metadata).
        rehearse(self.access.rehearse)
        rehearse(self.jobs.rehearse)
        rehearse(self.engines.specs)
        self._flush = PeriodicThread("audit-refusals", self.settings.reaper_interval_seconds,
                                     self.access.flush_refusals)
        self._flush.start()

    def stop(self) -> None:
        if self._flush is not None:
            self._flush.stop()
            self._flush = None
        self.jobs.close()
        # Counted refusals of windows still open: recorded, not lost with the process.
        self.access.flush_refusals(everything=True)
        if self.owns:
            self.pipeline.ingestor.sandbox.close()
            self.base.close()



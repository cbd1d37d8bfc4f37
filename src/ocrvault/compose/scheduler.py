"""Role ``scheduler``: the periodic work that must run once per cluster, not once per node
(the reaper, audit retention, reclaiming the jobs of dead workers, sending what the job
outbox holds, webhook dispatch), under a lease in the database; no HTTP.

Each task has its own interval. Each tick takes or renews the lease (store/locks.py) before
each task due, so of several
schedulers (a second one started by mistake, or a standby) one runs the tasks and the
others wait; when the holder stops it releases the lease, and when it dies the lease runs
out and another takes over. Every task is idempotent, so a moment of overlap (a holder
whose task outlived its lease) does no harm. The lease is three ticks long.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from ocrvault.clock import Clock, utcnow
from ocrvault.compose.parts import Foundation
from ocrvault.config import Settings
from ocrvault.jobs.leases import JobLeases
from ocrvault.jobs.queue import JobQueue, open_queue
from ocrvault.retention.epochs import EpochKeyReaper
from ocrvault.retention.reaper import PeriodicThread, Reaper
from ocrvault.retention.shredder import Shredder
from ocrvault.store.blobs import BlobStore
from ocrvault.store.locks import ClusterLock
from ocrvault.webhooks.dispatcher import Dispatcher
from ocrvault.webhooks.ssrf import guard_for

log = logging.getLogger(__name__)

LOCK_NAME = "scheduler"
LEASE_TICKS = 3


@dataclass(frozen=True)
class Task:
    name: str
    every: float  # seconds between runs
    run: Callable[[], object]


def node_name() -> str:
    """This process, as a lock's owner: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    """Runs each of ``tasks`` at its own interval while this node holds ``lock``: it ticks
    at the shortest interval and runs a task every ``round(task.every / interval)`` ticks
    (the first tick runs them all); the lease lasts LEASE_TICKS ticks."""

    def __init__(self, lock: ClusterLock, tasks: Sequence[Task]) -> None:
        self.lock = lock
        self.tasks = list(tasks)
        self.interval = min(task.every for task in self.tasks)
        self._ticks = 0
        self._thread: PeriodicThread | None = None

    def _due(self, task: Task) -> bool:
        return self._ticks % max(1, round(task.every / self.interval)) == 0

    def tick(self, everything: bool = False) -> bool:
        """One round of the tasks that are due (``everything``: of all of them), each run
        only while the lease is held (it is renewed before each); whether this node held it."""
        due = [task for task in self.tasks if everything or self._due(task)]
        self._ticks += 1
        held = False
        for task in due:
            if not self.lock.hold():
                if held:
                    log.warning("lost the scheduler lease before %s; another node runs it",
                                task.name)
                return held
            held = True
            try:
                task.run()
            except Exception:
                log.exception("periodic task %s failed", task.name)
        return held

    def start(self) -> None:
        self._thread = PeriodicThread("scheduler", self.interval, self.tick)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        self.lock.release()


@dataclass
class SchedulerNode:
    base: Foundation
    reaper: Reaper
    scheduler: Scheduler
    leases: JobLeases | None = None  # with a queue: reclaims dead workers' jobs
    owns: bool = False  # whether stop() closes the foundation
    owner: str = field(default="")
    dispatcher: Dispatcher | None = None

    @classmethod
    def build(cls, base: Foundation, queue: JobQueue | None, *,
              owner: str | None = None) -> SchedulerNode:
        """The periodic tasks on ``base``, which the caller closes. With ``queue``, the
        jobs of workers that stopped renewing their lease go back to it, and what the job
        outbox holds is sent to it."""
        settings = base.settings
        reaper = Reaper(base.db, Shredder(base.db, base.documents, base.clock, base.audit),
                        base.clock)
        every = settings.reaper_interval_seconds
        owner = owner or node_name()
        # Dispatchers claim deliveries under their own leases, so one that overlaps with
        # another (a lease that ran out mid-task) still sends no attempt twice.
        dispatcher = Dispatcher(base.db, base.keyring,
                                guard_for(settings.webhook_allow_http,
                                          settings.webhook_allow_cidrs),
                                base.clock, owner=owner)
        tasks = [Task("reaper", every, reaper.run_once),
                 Task("audit-retention", every, base.audit.purge_expired),
                 Task("webhooks", settings.webhook_dispatch_interval_seconds,
                      dispatcher.run_once)]
        if base.documents.tenant_keys is not None:
            tasks.append(Task("epoch-keys", every, EpochKeyReaper(
                base.db, base.documents.tenant_keys, base.audit, base.clock).run_once))
        leases = JobLeases(base.db, queue, base.clock) if queue is not None else None
        if leases is not None:
            tasks.append(Task("lease-reclaim", settings.lease_reclaim_interval_seconds,
                              leases.run_periodic))
        tick = min(task.every for task in tasks)
        lock = ClusterLock(base.db, LOCK_NAME, owner, timedelta(seconds=LEASE_TICKS * tick),
                           base.clock)
        return cls(base, reaper, Scheduler(lock, tasks), leases, owner=owner,
                   dispatcher=dispatcher)

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock = utcnow, blobs: BlobStore | None = None,
             queue: JobQueue | None = None, owner: str | None = None) -> SchedulerNode:
        """Role ``scheduler`` on its own: refuses a database not at this code's schema.
        It sends reclaimed jobs to ``queue``, by default the shared queue the settings name
        (a local queue belongs to role ``all``, whose start resumes its jobs itself)."""
        if queue is None and settings.queue != "local":
            queue = open_queue(settings, workers=0)
        node = cls.build(Foundation.open(settings, migrate=False, clock=clock, blobs=blobs),
                         queue, owner=owner)
        node.owns = True
        return node

    def tick(self) -> bool:
        """Run every task now (if this node holds the lease), whatever its interval: what
        an operator's or a test's explicit tick means."""
        return self.scheduler.tick(everything=True)

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
        if self.owns:
            self.base.close()

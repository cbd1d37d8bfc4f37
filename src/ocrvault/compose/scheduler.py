"""Role ``scheduler``: the periodic work that must run once per cluster, not once per node
(the reaper, audit retention), under a lease in the database; no HTTP.

Each tick takes or renews the lease (store/locks.py) before each task, so of several
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
from ocrvault.retention.epochs import EpochKeyReaper
from ocrvault.retention.reaper import PeriodicThread, Reaper
from ocrvault.retention.shredder import Shredder
from ocrvault.store.blobs import BlobStore
from ocrvault.store.locks import ClusterLock

log = logging.getLogger(__name__)

LOCK_NAME = "scheduler"
LEASE_TICKS = 3

Task = tuple[str, Callable[[], object]]


def node_name() -> str:
    """This process, as a lock's owner: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    """Runs ``tasks`` every ``interval`` seconds while this node holds ``lock``."""

    def __init__(self, lock: ClusterLock, tasks: Sequence[Task], interval: float) -> None:
        self.lock = lock
        self.tasks = list(tasks)
        self.interval = interval
        self._thread: PeriodicThread | None = None

    def tick(self) -> bool:
        """One round of the tasks, each run only while the lease is held (it is renewed
        before each); whether this node held it."""
        held = False
        for name, task in self.tasks:
            if not self.lock.hold():
                if held:
                    log.warning("lost the scheduler lease before %s; another node runs it", name)
                return held
            held = True
            try:
                task()
            except Exception:
                log.exception("periodic task %s failed", name)
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
    owns: bool = False  # whether stop() closes the foundation
    owner: str = field(default="")

    @classmethod
    def build(cls, base: Foundation, *, owner: str | None = None) -> SchedulerNode:
        """The periodic tasks on ``base``, which the caller closes."""
        settings = base.settings
        reaper = Reaper(base.db, Shredder(base.db, base.documents, base.clock, base.audit),
                        base.clock)
        # Other once-per-cluster work (lease reclaim, webhook dispatch) joins this list.
        tasks: list[Task] = [("reaper", reaper.run_once),
                             ("audit-retention", base.audit.purge_expired)]
        if base.documents.tenant_keys is not None:
            tasks.append(("epoch-keys", EpochKeyReaper(base.db, base.documents.tenant_keys,
                                                       base.audit, base.clock).run_once))
        owner = owner or node_name()
        lock = ClusterLock(base.db, LOCK_NAME, owner,
                           timedelta(seconds=LEASE_TICKS * settings.reaper_interval_seconds),
                           base.clock)
        return cls(base, reaper, Scheduler(lock, tasks, settings.reaper_interval_seconds),
                   owner=owner)

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock = utcnow, blobs: BlobStore | None = None,
             owner: str | None = None) -> SchedulerNode:
        """Role ``scheduler`` on its own: refuses a database not at this code's schema."""
        node = cls.build(Foundation.open(settings, migrate=False, clock=clock, blobs=blobs),
                         owner=owner)
        node.owns = True
        return node

    def tick(self) -> bool:
        return self.scheduler.tick()

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
        if self.owns:
            self.base.close()

"""The reaper: purges jobs whose expiry has passed, and finishes interrupted purges.

It runs every ``reaper_interval_seconds`` (default 10 s), so expired data is gone
well within a minute of its expiry. Purging is idempotent, so several reapers
(several API nodes) may run at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ocrvault.clock import Clock
from ocrvault.jobs.deletion import Shredder
from ocrvault.store.db import Database
from ocrvault.store.repository import JobRepository

log = logging.getLogger(__name__)


class Reaper:
    def __init__(self, db: Database, shredder: Shredder, clock: Clock, batch: int = 500) -> None:
        self.db = db
        self.shredder = shredder
        self.clock = clock
        self.batch = batch

    def run_once(self) -> int:
        """Purge one batch of expired jobs; returns how many were purged."""
        with self.db.transaction() as session:
            jobs = JobRepository(session)
            due = list(jobs.expired_ids(self.clock(), self.batch))
            due += jobs.unswept_tombstone_ids(self.batch)  # see jobs/deletion.py
        for job_id in dict.fromkeys(due):
            self.shredder.purge(job_id)
        if due:
            log.info("reaper purged %d jobs", len(due))
        return len(due)


class PeriodicThread:
    """Runs a function every ``interval`` seconds on a daemon thread until stopped."""

    def __init__(self, name: str, interval: float, task: Callable[[], object]) -> None:
        self._stop = threading.Event()
        self._interval = interval
        self._task = task
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._task()
            except Exception:
                log.exception("periodic task %s failed", self._thread.name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

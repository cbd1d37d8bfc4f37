"""The reaper: deletes every part of a job whose retention has run out.

It runs every ``reaper_interval_seconds`` (default 10 s), so expired data is gone
well within a minute of its expiry, and it finishes purges a crash interrupted
(see retention/shredder.py). Every step is idempotent, so several reapers (several API
nodes) may run at once. Its lag is exported as Prometheus metrics
(telemetry/metrics.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ocrvault.clock import Clock
from ocrvault.retention.shredder import Shredder
from ocrvault.store.db import Database
from ocrvault.store.repository import JobRepository
from ocrvault.telemetry import metrics

log = logging.getLogger(__name__)


@dataclass
class ReaperStats:
    """What the reaper has done (also exported as metrics): expiry must be met within a minute."""

    runs: int = 0
    jobs_processed: int = 0
    last_run_lag_seconds: float = 0.0
    max_lag_seconds: float = 0.0


class Reaper:
    def __init__(self, db: Database, shredder: Shredder, clock: Clock, batch: int = 500) -> None:
        self.db = db
        self.shredder = shredder
        self.clock = clock
        self.batch = batch
        self.stats = ReaperStats()

    def run_once(self) -> int:
        """Apply retention to every due job, batch after batch; returns how many."""
        done, lag = 0, 0.0
        while True:
            now = self.clock()
            with self.db.transaction() as session:
                due = JobRepository(session).due_ids(now, self.batch)
            due_times = self.shredder.expire_due(due)
            finished = self.clock()
            done += len(due_times)
            lag = max([lag, *((finished - at).total_seconds() for at in due_times)])
            if len(due) < self.batch:
                break
        if done:
            self.db.scrub()
        self.stats.runs += 1
        self.stats.jobs_processed += done
        self.stats.last_run_lag_seconds = lag
        self.stats.max_lag_seconds = max(self.stats.max_lag_seconds, lag)
        metrics.record_reaper_pass(done, lag, self.stats.max_lag_seconds)
        if done:
            log.info("reaper applied retention to %d jobs (lag %.1f s)", done, lag)
        return done


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

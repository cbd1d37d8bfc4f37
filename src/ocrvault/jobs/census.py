"""Jobs by state, queue depth and the age of the oldest waiting job, as gauges.

Sampled from the database by the scheduler (once per cluster), not counted by each
node: every API node submits and every worker claims, so only the database knows the
whole queue, whatever the broker.
"""

from __future__ import annotations

from ocrvault.clock import Clock
from ocrvault.model import JobStatus
from ocrvault.store.db import Database
from ocrvault.store.repository import JobRepository
from ocrvault.telemetry import metrics


class JobCensus:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def run_once(self) -> None:
        with self.db.transaction() as session:
            counts, oldest = JobRepository(session).census()
        for state in JobStatus:
            metrics.JOBS.labels(state=state.value).set(counts.get(state.value, 0))
        metrics.QUEUE_DEPTH.set(counts.get(JobStatus.QUEUED.value, 0))
        age = 0.0 if oldest is None else (self.clock() - oldest).total_seconds()
        metrics.QUEUE_OLDEST_AGE.set(max(0.0, age))

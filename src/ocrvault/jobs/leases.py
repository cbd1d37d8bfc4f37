"""Leases on running jobs: whatever dies mid-job is finished by someone else, once.

A worker claims a queued job with one conditional UPDATE that sets it running under a
lease: a holder token (host, process, claim) and an expiry ``job_lease_seconds`` ahead.
While it works, a heartbeat thread renews the lease every third of that, and each page's
progress renews it too; the result is stored only by an UPDATE conditional on the
holder, so it is stored once even when two workers ran the job.

A worker that dies (SIGKILL, power loss) stops renewing. :meth:`JobLeases.reclaim_expired`,
run periodically by the scheduler role, returns each running job whose lease ran out to
the queue, through the outbox; the next claim counts another attempt, and a job that
exhausted its attempts is failed by the worker that claims it (jobs/worker.py). A worker
that cannot get a key (the key service is down) hands its job back the same way, with a
short lease and its attempt uncounted (:meth:`LeaseKeeper.postpone`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ocrvault.clock import Clock
from ocrvault.jobs.outbox import Outbox
from ocrvault.jobs.queue import JobQueue
from ocrvault.store.db import Database
from ocrvault.store.leases import LeaseRepository, OutboxRepository
from ocrvault.store.repository import JobRepository

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The job's lease ran out and passed on: this worker must drop its work on it."""


def new_holder() -> str:
    """A claim's token, unique per claim and naming the host and process that made it
    (for an operator reading the jobs table)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def claim_of(holder: str) -> str:
    """The claim's own part of a holder token from :func:`new_holder`."""
    return holder.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class Lease:
    job_id: str
    holder: str
    lost: threading.Event = field(default_factory=threading.Event)


class LeaseKeeper:
    """The worker's side: claim a job, keep its lease alive, record progress under it."""

    def __init__(self, db: Database, clock: Clock, seconds: float) -> None:
        self.db = db
        self.clock = clock
        self.seconds = seconds

    def until(self) -> datetime:
        return self.clock() + timedelta(seconds=self.seconds)

    def claim(self, job_id: str) -> Lease | None:
        """The job, now running under a new lease; None if it was not queued."""
        lease = Lease(job_id, new_holder())
        with self.db.transaction() as session:
            claimed = LeaseRepository(session).claim(job_id, self.clock(), lease.holder,
                                                     self.until())
        return lease if claimed else None

    def renew(self, lease: Lease) -> None:
        """Extend the lease now; raises LeaseLost if it has passed on."""
        if not lease.lost.is_set():
            with self.db.transaction() as session:
                if LeaseRepository(session).renew(lease.job_id, lease.holder, self.until()):
                    return
            lease.lost.set()
        raise LeaseLost(lease.job_id)

    def postpone(self, lease: Lease, seconds: float) -> bool:
        """Hand the job back for a retry in ``seconds``, without counting this attempt:
        its lease lapses then and the reclaim returns it to the queue (JobLeases). Only
        once the heartbeat has stopped (it would renew the lease). False if the lease had
        already passed on."""
        until = self.clock() + timedelta(seconds=seconds)
        with self.db.transaction() as session:
            return LeaseRepository(session).postpone(lease.job_id, lease.holder, until)

    def progress(self, lease: Lease, pages_done: int) -> None:
        """Record pages done and renew the lease; raises LeaseLost if it has passed on."""
        if not lease.lost.is_set():
            with self.db.transaction() as session:
                if JobRepository(session).record_progress(lease.job_id, pages_done,
                                                          lease.holder, self.until()):
                    return
            lease.lost.set()
        raise LeaseLost(lease.job_id)

    @contextmanager
    def kept(self, lease: Lease) -> Iterator[Lease]:
        """Renew ``lease`` every third of its length until the block ends (a page that
        takes longer than the lease must not lose it); stops at the first refusal."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.seconds / 3):
                try:
                    self.renew(lease)
                except LeaseLost:
                    log.warning("job %s: lease lost; another worker may be running it",
                                lease.job_id)
                    return
                except Exception:  # the database is unreachable: try again next beat
                    log.exception("job %s: lease renewal failed", lease.job_id)

        thread = threading.Thread(target=beat, name=f"lease-{lease.job_id[:8]}", daemon=True)
        thread.start()
        try:
            yield lease
        finally:
            done.set()
            thread.join()


class JobLeases:
    """The scheduler's side: jobs whose worker stopped renewing go back to the queue."""

    def __init__(self, db: Database, queue: JobQueue, clock: Clock, batch: int = 500) -> None:
        self.db = db
        self.queue = queue
        self.clock = clock
        self.batch = batch
        self.outbox = Outbox(db, queue, clock)

    def reclaim_expired(self, now: datetime | None = None) -> list[str]:
        """Return every running job whose lease ran out before ``now`` (default: the
        clock) to the queue and enqueue it; returns their ids. Safe to run on several
        nodes at once: each job is returned by one of them."""
        now = now or self.clock()
        with self.db.transaction() as session:
            expired = LeaseRepository(session).expired(now, self.batch)
        returned: list[tuple[str, str]] = []
        for job_id, tenant_id in expired:
            with self.db.transaction() as session:
                if LeaseRepository(session).requeue_expired(job_id, now):
                    self.outbox.record(session, job_id, tenant_id)
                    returned.append((job_id, tenant_id))
        for job_id, tenant_id in returned:
            self.outbox.dispatch(job_id, tenant_id)
        if returned:
            log.warning("returned %d jobs whose worker stopped renewing its lease to the "
                        "queue", len(returned))
        return [job_id for job_id, _ in returned]

    def run_periodic(self) -> None:
        """What the scheduler runs every ``lease_reclaim_interval_seconds``."""
        self.reclaim_expired()
        self.outbox.sweep()

    def resume_at_start(self) -> int:
        """What a node that runs workers does as it starts; returns the jobs it enqueued.

        With a durable queue, other nodes may be running jobs: only expired leases are
        reclaimed, and the outbox swept. A queue that is not durable means this process
        is the only worker (the embedded deployment): every running job was interrupted
        by its last stop, and every queued job is enqueued again, its outbox row with it.
        """
        if self.queue.durable:
            return len(self.reclaim_expired()) + self.outbox.sweep()
        with self.db.transaction() as session:
            interrupted = LeaseRepository(session).requeue_all_running()
            OutboxRepository(session).clear()
            pending = JobRepository(session).queued()
        if pending:
            log.info("resuming %d queued jobs (%d were interrupted)", len(pending), interrupted)
        for job_id, tenant_id in pending:
            self.queue.enqueue(job_id, tenant_id)
        return len(pending)

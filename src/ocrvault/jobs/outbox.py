"""The job outbox: a job id reaches the queue only after the job's row has committed.

The transaction that records a job (a submission, a reclaimed lease) also writes an
outbox row (:meth:`Outbox.record`); after the commit the id is enqueued at once and the
row deleted (:meth:`Outbox.dispatch`). A crash or a broker outage between the two
leaves the row, and :meth:`Outbox.sweep` (run periodically by the scheduler) sends it
later; a transaction that rolls back leaves no row and sends nothing. An id sent twice
(a sweep racing a dispatch) is harmless: the worker's claim lets one run it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from ocrvault.clock import Clock
from ocrvault.jobs.queue import JobQueue
from ocrvault.store.db import Database, Transaction
from ocrvault.store.leases import OutboxRepository

log = logging.getLogger(__name__)

# A row younger than this is left to the dispatch that follows its commit, so that the
# sweep does not send, a second time, what an API node is about to send.
SWEEP_GRACE = timedelta(seconds=10)


class Outbox:
    def __init__(self, db: Database, queue: JobQueue, clock: Clock, batch: int = 500) -> None:
        self.db = db
        self.queue = queue
        self.clock = clock
        self.batch = batch

    def record(self, session: Transaction, job_id: str, tenant_id: str) -> None:
        """Note, in the caller's transaction, that ``job_id`` is to be enqueued."""
        OutboxRepository(session).add(job_id, tenant_id, self.clock())

    def dispatch(self, job_id: str, tenant_id: str) -> bool:
        """Enqueue a committed job and drop its row; False (the row kept for the sweep)
        when the queue refused it. Never raises for the queue's sake: the job is safe in
        the database either way."""
        try:
            self.queue.enqueue(job_id, tenant_id)
        except Exception as error:  # the broker is down or refused: the sweep retries
            log.warning("job %s is queued but not yet sent to the queue (%s); it will be "
                        "sent when the queue is reachable", job_id, error)
            return False
        with self.db.transaction() as session:
            OutboxRepository(session).remove(job_id)
        return True

    def sweep(self, now: datetime | None = None) -> int:
        """Send every row older than SWEEP_GRACE (left by a crash or an outage); returns
        how many were sent. Stops at the first refusal: the queue is down for all."""
        before = (now or self.clock()) - SWEEP_GRACE
        sent = 0
        while True:
            with self.db.transaction() as session:
                rows = OutboxRepository(session).older_than(before, self.batch)
            for job_id, tenant_id in rows:
                if not self.dispatch(job_id, tenant_id):
                    return sent
                sent += 1
            if len(rows) < self.batch:
                break
        if sent:
            log.info("outbox: sent %d jobs left unsent", sent)
        return sent

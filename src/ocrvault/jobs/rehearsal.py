"""A job's database statements, run once at start and rolled back.

SQLAlchemy compiles each statement, and builds the ORM's state for it, the first time a
process runs it: about 12 ms of CPU on the submission's path and 6 ms on the worker's
(claim, progress, finish), all of it holding the GIL. Unrehearsed, the first burst of
submissions after a start paid that while every other request of the burst waited for
it (issue 18: a first burst's slowest submission some 50 ms above its start's later
bursts').

So each node runs its side of a job's life at start (AccessService.rehearse and
JobService.rehearse on an API node, JobWorker.rehearse on a worker) through the same code
as a real job, in a transaction that is always rolled back, on a job of a tenant made up
for it: nothing is committed, no audit entry lands, no blob is written and no key is
made. A crash half-way commits nothing either. The made-up tenant is named by a fresh
UUID, so that two nodes rehearsing at once on one database never wait on each other's
uncommitted row.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from ocrvault.clock import Clock
from ocrvault.environments import Environment
from ocrvault.retention.policy import RetentionPolicy, ceiling_for
from ocrvault.store.commands import NewJob, NewTenant
from ocrvault.store.db import Database, Transaction
from ocrvault.store.repository import TenantRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Stage:
    """Where a rehearsal runs: its transaction, its tenant, its clock's time."""

    session: Transaction
    tenant_id: str
    now: datetime

    def job(self) -> NewJob:
        """A one-page PNG job of the stage's tenant, shaped as a submission makes one."""
        policy = RetentionPolicy()
        ceiling = ceiling_for(Environment.LIVE, self.now)
        return NewJob(
            id=str(uuid.uuid4()), tenant_id=self.tenant_id, api_key_id=None,
            environment=Environment.LIVE, created_at=self.now,
            expires_at=self.now + timedelta(seconds=policy.result),
            retention=policy.as_dict(), metadata_expires_at=ceiling, next_expiry_at=ceiling,
            languages=("eng",), page_selection=(0,), outputs=(), input_format="png",
            input_bytes=1, page_count=1, pages_requested=None, pages_missing=None,
            wrapped_dek=b"\0" * 60, master_key_version=1, key_epoch=0,
            customer_wrapped_dek=None, customer_key_sha256=None, stored_objects=("input",))


@contextmanager
def rehearsal(db: Database, clock: Clock) -> Iterator[Stage]:
    """A stage whose transaction is rolled back however the block ends."""
    with db.rolled_back() as session:
        tenant_id, now = str(uuid.uuid4()), clock()
        TenantRepository(session).add(NewTenant(tenant_id, f"rehearsal:{tenant_id}", now))
        yield Stage(session, tenant_id, now)


def rehearse(part: Callable[[], object]) -> None:
    """Run a part of a node's rehearsal. A failure is logged, never raised: a node that
    could not rehearse serves all the same, its first requests only slower."""
    try:
        part()
    except Exception:
        log.warning("a start-up rehearsal (%s) failed; the first requests will do its work "
                    "instead", getattr(part, "__qualname__", part), exc_info=True)

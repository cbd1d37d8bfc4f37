"""Which epoch keys nothing needs any more: the database's half of destroying them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, or_, select

from ocrvault.model import JobStatus
from ocrvault.store.db import Database
from ocrvault.store.tables import JobRow


def epoch_still_needed(db: Database, tenant_id: str, epoch: int, now: datetime) -> bool:
    """Whether a job under this epoch key may still hold content: unfinished, or with a
    part that has not yet expired. A job that ran past its expected end keeps the key
    alive until it expires (docs/security.md)."""
    unfinished = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
    with db.transaction() as session:
        return bool(session.scalar(select(exists().where(
            JobRow.tenant_id == tenant_id, JobRow.key_epoch == epoch,
            JobRow.wrapped_dek.is_not(None),  # a customer-wrapped DEK needs no epoch key
            or_(JobRow.status.in_(unfinished), JobRow.expires_at > now,
                JobRow.input_expires_at > now, JobRow.outputs_expires_at > now)))))

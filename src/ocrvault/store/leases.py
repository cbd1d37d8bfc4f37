"""The statements behind job leases and the job outbox (see jobs/leases.py, jobs/outbox.py).

Every lease change is one conditional UPDATE, so two nodes racing for a job (two workers
claiming it, a worker renewing while the reclaim returns it to the queue) cannot both win:
the database decides, by the row count.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.orm import Session

from ocrvault.model import JobStatus
from ocrvault.store.tables import JobOutboxRow, JobRow

_RUNNING = JobStatus.RUNNING.value
_QUEUED = JobStatus.QUEUED.value


def _lease_out(now: datetime) -> ColumnElement[bool]:
    return or_(JobRow.lease_expires_at < now, JobRow.lease_expires_at.is_(None))


def _changed(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


class LeaseRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(self, job_id: str, now: datetime, holder: str, until: datetime) -> bool:
        """Move a queued job to running under ``holder``'s lease until ``until``, counting
        an attempt; False if it is not queued (someone else has it, or it is finished)."""
        return _changed(self.session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == _QUEUED)
            .values(status=_RUNNING, started_at=now, attempts=JobRow.attempts + 1,
                    pages_done=0, lease_owner=holder, lease_expires_at=until)
        )) == 1

    def renew(self, job_id: str, holder: str, until: datetime) -> bool:
        """Extend ``holder``'s lease; False if the job is no longer running under it."""
        return _changed(self.session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == _RUNNING, JobRow.lease_owner == holder)
            .values(lease_expires_at=until)
        )) == 1

    def expired(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(job id, tenant id) of running jobs whose lease ran out before ``now``, oldest
        lease first. A running job without a lease was claimed before leases existed: its
        lease is out too."""
        rows = self.session.execute(
            select(JobRow.id, JobRow.tenant_id)
            .where(JobRow.status == _RUNNING, _lease_out(now))
            .order_by(JobRow.lease_expires_at)
            .limit(limit)
        ).all()
        return [(job_id, tenant_id) for job_id, tenant_id in rows]

    def requeue_expired(self, job_id: str, now: datetime) -> bool:
        """Return the job to the queue if its lease is still out (a renewal since
        :meth:`expired` wins); False if it was not returned."""
        return _changed(self.session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == _RUNNING, _lease_out(now))
            .values(status=_QUEUED, lease_owner=None, lease_expires_at=None)
        )) == 1

    def requeue_all_running(self) -> int:
        """Every running job back to the queue, whatever its lease: only for a node that
        knows it is the only worker (the embedded deployment starting up)."""
        return _changed(self.session.execute(
            update(JobRow).where(JobRow.status == _RUNNING)
            .values(status=_QUEUED, lease_owner=None, lease_expires_at=None)
        ))


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, job_id: str, tenant_id: str, now: datetime) -> None:
        self.session.add(JobOutboxRow(job_id=job_id, tenant_id=tenant_id, created_at=now))

    def remove(self, job_id: str) -> None:
        self.session.execute(delete(JobOutboxRow).where(JobOutboxRow.job_id == job_id))

    def clear(self) -> int:
        return _changed(self.session.execute(delete(JobOutboxRow)))

    def older_than(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """(job id, tenant id) of rows written before ``before``, oldest first."""
        rows = self.session.execute(
            select(JobOutboxRow.job_id, JobOutboxRow.tenant_id)
            .where(JobOutboxRow.created_at < before)
            .order_by(JobOutboxRow.created_at).limit(limit)
        ).all()
        return [(job_id, tenant_id) for job_id, tenant_id in rows]

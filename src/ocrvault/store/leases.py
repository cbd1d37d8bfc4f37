"""The statements behind job leases and the job outbox (see jobs/leases.py, jobs/outbox.py).

Every lease change is one conditional UPDATE, so two nodes racing for a job (two workers
claiming it, a worker renewing while the reclaim returns it to the queue) cannot both win:
the database decides, by the row count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from ocrvault.model import JobStatus
from ocrvault.store.tables import JobOutboxRow, JobRow

_RUNNING = JobStatus.RUNNING.value
_QUEUED = JobStatus.QUEUED.value


def _lease_out(now: datetime) -> ColumnElement[bool]:
    return or_(JobRow.lease_expires_at < now, JobRow.lease_expires_at.is_(None))


def _held(job_id: str, holder: str) -> ColumnElement[bool]:
    """The job, while it runs under ``holder``'s lease."""
    return and_(JobRow.id == job_id, JobRow.status == _RUNNING, JobRow.lease_owner == holder)


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
                    pages_done=0, pages_claimed=0, lease_owner=holder, lease_expires_at=until,
                    # What a page of a lapsed claim failed with is that claim's, not this one's.
                    error_code=None, error_detail=None)
        )) == 1

    def renew(self, job_id: str, holder: str, until: datetime) -> bool:
        """Extend ``holder``'s lease; False if the job is no longer running under it."""
        return _changed(self.session.execute(
            update(JobRow)
            .where(_held(job_id, holder))
            .values(lease_expires_at=until)
        )) == 1

    def postpone(self, job_id: str, holder: str, until: datetime) -> bool:
        """Let ``holder``'s lease lapse at ``until`` and uncount its attempt (the job was
        not at fault: a service it needs was down); False if it no longer holds it."""
        return _changed(self.session.execute(
            update(JobRow)
            .where(_held(job_id, holder))
            .values(lease_expires_at=until, attempts=JobRow.attempts - 1)
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


@dataclass(frozen=True, slots=True)
class PagesState:
    status: str
    holder: str | None
    done: int
    error_code: str | None
    error_detail: str | None


class PageClaimRepository:
    """The statements behind a job's pages spread over the cluster (jobs/spread.py): each
    one conditional on the job still running under the claim's lease."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def take(self, job_id: str, holder: str, count: int) -> int | None:
        """The next page not handed out yet (0-based), now handed out; None when every
        page is, or the job no longer runs under ``holder``."""
        claimed = func.coalesce(JobRow.pages_claimed, 0)
        taken = self.session.execute(
            update(JobRow).where(_held(job_id, holder), claimed < count)
            .values(pages_claimed=claimed + 1).returning(JobRow.pages_claimed)
        ).scalar()
        return None if taken is None else int(taken) - 1

    def fail(self, job_id: str, holder: str, count: int, code: str, detail: str) -> None:
        """A page failed: hand out no further page, and tell the owner why (the first
        failure recorded stays; the owner's finish writes it as the job's outcome)."""
        self.session.execute(update(JobRow).where(_held(job_id, holder))
                             .values(pages_claimed=count))
        self.session.execute(update(JobRow).where(_held(job_id, holder),
                                                  JobRow.error_code.is_(None))
                             .values(error_code=code, error_detail=detail))

    def count_done(self, job_id: str, holder: str) -> bool:
        """One more page read and stored; False if the job no longer runs under ``holder``."""
        return _changed(self.session.execute(
            update(JobRow).where(_held(job_id, holder))
            .values(pages_done=func.coalesce(JobRow.pages_done, 0) + 1)
        )) == 1

    def state(self, job_id: str) -> PagesState | None:
        """Where the job's pages stand; None if the job is gone."""
        row = self.session.execute(
            select(JobRow.status, JobRow.lease_owner, JobRow.pages_done, JobRow.error_code,
                   JobRow.error_detail).where(JobRow.id == job_id)
        ).first()
        if row is None:
            return None
        return PagesState(row[0], row[1], int(row[2] or 0), row[3], row[4])


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

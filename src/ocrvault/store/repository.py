"""Tenant-scoped queries in one place: no caller filters by tenant on its own.

Every read of a job or key for a caller goes through a method that takes the
caller's tenant (and environment), so another tenant's id simply is not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, select, update
from sqlalchemy.orm import Session

from ocrvault.store.tables import ApiKeyRow, JobRow, TenantRow


class TenantRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: TenantRow) -> None:
        self.session.add(row)

    def by_name(self, name: str) -> TenantRow | None:
        return self.session.scalar(select(TenantRow).where(TenantRow.name == name))

    def count(self) -> int:
        return len(self.session.scalars(select(TenantRow.id)).all())


class KeyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: ApiKeyRow) -> None:
        self.session.add(row)

    def by_digest(self, digest: str) -> ApiKeyRow | None:
        return self.session.scalar(select(ApiKeyRow).where(ApiKeyRow.digest == digest))

    def touch(self, key_id: str, now: datetime) -> None:
        self.session.execute(
            update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=now)
        )


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: JobRow) -> None:
        self.session.add(row)

    def for_owner(self, job_id: str, tenant_id: str, environment: str) -> JobRow | None:
        return self.session.scalar(
            select(JobRow).where(
                JobRow.id == job_id,
                JobRow.tenant_id == tenant_id,
                JobRow.environment == environment,
            )
        )

    def by_id(self, job_id: str) -> JobRow | None:
        """Unscoped: only for workers and the reaper, never for a caller's request."""
        return self.session.get(JobRow, job_id)

    def claim(self, job_id: str, now: datetime) -> bool:
        """Atomically move a queued job to running; False if someone else has it."""
        result = self.session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == "queued")
            .values(status="running", started_at=now, attempts=JobRow.attempts + 1)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def requeue_running(self) -> int:
        """At start-up of the embedded deployment, running jobs were interrupted."""
        result = self.session.execute(
            update(JobRow).where(JobRow.status == "running").values(status="queued")
        )
        return int(getattr(result, "rowcount", 0))

    def queued_ids(self) -> Sequence[str]:
        return self.session.scalars(
            select(JobRow.id).where(JobRow.status == "queued").order_by(JobRow.created_at)
        ).all()

    def expired_ids(self, now: datetime, limit: int) -> Sequence[str]:
        return self.session.scalars(
            select(JobRow.id)
            .where(JobRow.expires_at <= now, JobRow.status != "deleted")
            .order_by(JobRow.expires_at)
            .limit(limit)
        ).all()

    def finish_running(self, job_id: str, **values: Any) -> bool:
        """Record a running job's outcome; False if it stopped running meanwhile (deleted)."""
        result = self.session.execute(
            update(JobRow).where(JobRow.id == job_id, JobRow.status == "running").values(**values)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def unswept_tombstone_ids(self, limit: int) -> Sequence[str]:
        """Deleted jobs whose blobs a crash may have left behind."""
        return self.session.scalars(
            select(JobRow.id)
            .where(JobRow.status == "deleted", cast(JobRow.stored_objects, String) != "[]")
            .limit(limit)
        ).all()

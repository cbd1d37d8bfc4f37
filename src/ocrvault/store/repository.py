"""Tenant-scoped queries in one place: no caller filters by tenant on its own.

Every read of a job or key for a caller goes through a method that takes the
caller's tenant (and environment), so another tenant's id simply is not found.

Rows stay here: reads return frozen records (store/records.py) and writes take commands
(store/commands.py). The audit repository still hands out rows, to audit/ only.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from ocrvault.model import JobStatus
from ocrvault.store.commands import (
    FinishJob,
    NewApiKey,
    NewJob,
    NewTenant,
    RevokeKey,
    RotateSecret,
    SetRetentionPolicy,
    SetStoredObjects,
    TombstoneJob,
)
from ocrvault.store.records import ApiKeyRecord, JobRecord, RetentionPolicyRecord, TenantRecord
from ocrvault.store.tables import (
    ApiKeyRow,
    JobRow,
    KeyUsageRow,
    RetentionPolicyRow,
    TenantRow,
)

# Statements on hot paths (authentication and audit appends run on every request) are
# built once, with bound parameters: building one costs more than running it.
_BY_SECRET = select(ApiKeyRow).where(
    or_(ApiKeyRow.digest == bindparam("digest"), ApiKeyRow.previous_digest == bindparam("digest"))
)


def _in_environments(
    column: InstrumentedAttribute[str | None] | InstrumentedAttribute[str],
    environments: Collection[str | None],
) -> ColumnElement[bool]:
    """``column`` is one of ``environments``; a None among them admits NULL too."""
    named = column.in_([e for e in environments if e is not None])
    return or_(named, column.is_(None)) if None in environments else named


def _submitted_by(key_id: str | None) -> tuple[ColumnElement[bool], ...]:
    """No condition for None (the tenant's jobs), else only the jobs that key submitted."""
    return () if key_id is None else (JobRow.api_key_id == key_id,)


class TenantRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, command: NewTenant) -> TenantRecord:
        row = TenantRow(id=command.id, name=command.name, created_at=command.created_at)
        self.session.add(row)
        self.session.flush()
        return TenantRecord.of(row)

    def by_name(self, name: str) -> TenantRecord | None:
        row = self.session.scalar(select(TenantRow).where(TenantRow.name == name))
        return None if row is None else TenantRecord.of(row)

    def count(self) -> int:
        return len(self.session.scalars(select(TenantRow.id)).all())


class KeyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, command: NewApiKey) -> ApiKeyRecord:
        row = ApiKeyRow(
            id=command.id, tenant_id=command.tenant_id, name=command.name,
            environment=command.environment.value, digest=command.digest, hint=command.hint,
            scopes=list(command.scopes), created_at=command.created_at,
            created_by=command.created_by, expires_at=command.expires_at,
            allowed_ips=None if command.allowed_ips is None else list(command.allowed_ips),
            rate_limit_per_minute=command.rate_limit_per_minute,
            max_concurrent_jobs=command.max_concurrent_jobs,
            max_pages_per_day=command.max_pages_per_day,
            job_visibility=command.job_visibility,
        )
        self.session.add(row)
        self.session.flush()
        return ApiKeyRecord.of(row)

    def by_secret(self, digest: str) -> ApiKeyRecord | None:
        """The key whose current or previous (rotated) secret has this digest."""
        row = self.session.scalar(_BY_SECRET, {"digest": digest})
        return None if row is None else ApiKeyRecord.of(row)

    def for_tenant(self, key_id: str, tenant_id: str, environments: Collection[str], *,
                   lock: bool = False) -> ApiKeyRecord | None:
        """``lock``: held until the transaction ends (FOR UPDATE), for a change decided on
        what is read: a second change waits and then reads the first's, not the row before."""
        query = select(ApiKeyRow).where(
            ApiKeyRow.id == key_id,
            ApiKeyRow.tenant_id == tenant_id,
            _in_environments(ApiKeyRow.environment, environments),
        )
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        row = self.session.scalar(query)
        return None if row is None else ApiKeyRecord.of(row)

    def list_for_tenant(self, tenant_id: str,
                        environments: Collection[str]) -> list[ApiKeyRecord]:
        return [ApiKeyRecord.of(row) for row in self.session.scalars(
            select(ApiKeyRow)
            .where(ApiKeyRow.tenant_id == tenant_id,
                   _in_environments(ApiKeyRow.environment, environments))
            .order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        )]

    def made_by(self, tenant_id: str, maker_ids: Collection[str]) -> list[ApiKeyRecord]:
        """The keys that any of ``maker_ids`` made (one generation), in any environment."""
        if not maker_ids:
            return []
        return [ApiKeyRecord.of(row) for row in self.session.scalars(
            select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id,
                                    ApiKeyRow.created_by.in_(list(maker_ids)))
        )]

    def _row(self, key_id: str) -> ApiKeyRow:
        row = self.session.get(ApiKeyRow, key_id)
        if row is None:
            raise LookupError(f"no key {key_id!r}")
        return row

    def revoke(self, command: RevokeKey) -> ApiKeyRecord:
        """Revoke the key (every secret of it); the key as it is now."""
        row = self._row(command.key_id)
        row.revoked_at, row.revoked_by = command.at, command.by
        row.revoked_with = command.with_key
        self.session.flush()
        return ApiKeyRecord.of(row)

    def rotate(self, command: RotateSecret) -> ApiKeyRecord:
        """Give the key a new secret; the key as it is now."""
        row = self._row(command.key_id)
        row.previous_digest, row.previous_expires_at = row.digest, command.previous_expires_at
        row.digest, row.hint, row.rotated_at = command.digest, command.hint, command.at
        self.session.flush()
        return ApiKeyRecord.of(row)

    def touch(self, key_id: str, now: datetime) -> None:
        self.session.execute(
            update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=now)
        )


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, command: NewJob) -> JobRecord:
        """Store a new job as queued."""
        row = JobRow(
            id=command.id, tenant_id=command.tenant_id, api_key_id=command.api_key_id,
            environment=command.environment.value, status=JobStatus.QUEUED.value,
            created_at=command.created_at, expires_at=command.expires_at,
            retention=dict(command.retention),
            metadata_expires_at=command.metadata_expires_at,
            next_expiry_at=command.next_expiry_at, languages=list(command.languages),
            page_selection=list(command.page_selection), outputs=list(command.outputs),
            input_format=command.input_format, input_bytes=command.input_bytes,
            page_count=command.page_count, attempts=0, pages_done=0,
            pages_requested=command.pages_requested, pages_missing=command.pages_missing,
            wrapped_dek=command.wrapped_dek, master_key_version=command.master_key_version,
            key_epoch=command.key_epoch, customer_wrapped_dek=command.customer_wrapped_dek,
            customer_key_sha256=command.customer_key_sha256,
            stored_objects=list(command.stored_objects),
        )
        self.session.add(row)
        self.session.flush()
        return JobRecord.of(row)

    def for_owner(self, job_id: str, tenant_id: str, environment: str,
                  submitted_by: str | None = None) -> JobRecord | None:
        """The job, if it is the tenant's in ``environment`` (and, given ``submitted_by``,
        that key submitted it)."""
        row = self.session.scalar(
            select(JobRow).where(
                JobRow.id == job_id,
                JobRow.tenant_id == tenant_id,
                JobRow.environment == environment,
                *_submitted_by(submitted_by),
            )
        )
        return None if row is None else JobRecord.of(row)

    def by_id(self, job_id: str, *, lock: bool = False) -> JobRecord | None:
        """Unscoped: only for workers and the reaper, never for a caller's request.

        ``lock``: for a read that decides a write, hold the row until the transaction ends
        (SELECT ... FOR UPDATE; PostgreSQL lets two transactions read it at once, where
        SQLite's single writer refuses the second one's write).
        """
        row = self.session.get(JobRow, job_id, with_for_update=lock or None)
        return None if row is None else JobRecord.of(row)

    def by_ids(self, job_ids: Collection[str], *, lock: bool = False) -> list[JobRecord]:
        """Unscoped, like :meth:`by_id` (``lock`` too, in id order): the reaper's batches."""
        if not job_ids:
            return []
        query = select(JobRow).where(JobRow.id.in_(list(job_ids)))
        if lock:
            query = query.order_by(JobRow.id).with_for_update()
        return [JobRecord.of(row) for row in self.session.scalars(query)]

    def active_count_for_key(self, tenant_id: str, key_id: str) -> int:
        """Queued and running jobs a key has submitted: its concurrent-jobs quota."""
        return int(self.session.scalar(
            select(func.count()).select_from(JobRow).where(
                JobRow.tenant_id == tenant_id, JobRow.api_key_id == key_id,
                JobRow.status.in_((JobStatus.QUEUED.value, JobStatus.RUNNING.value)),
            )
        ) or 0)

    def record_progress(self, job_id: str, pages_done: int, holder: str,
                        lease_until: datetime) -> bool:
        """A running job's pages done so far, renewing ``holder``'s lease; False (nothing
        written) once the job stopped running under that lease."""
        result = self.session.execute(
            update(JobRow).where(JobRow.id == job_id, JobRow.status == JobStatus.RUNNING.value,
                                 JobRow.lease_owner == holder)
            .values(pages_done=pages_done, lease_expires_at=lease_until)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def queued(self) -> list[tuple[str, str]]:
        """(job id, tenant id) of every queued job, oldest first."""
        rows = self.session.execute(
            select(JobRow.id, JobRow.tenant_id).where(JobRow.status == JobStatus.QUEUED.value)
            .order_by(JobRow.created_at)
        ).all()
        return [(job_id, tenant_id) for job_id, tenant_id in rows]

    def census(self) -> tuple[dict[str, int], datetime | None]:
        """Jobs by status, and when the oldest still-queued job was submitted (metrics)."""
        counts = {str(status): int(count) for status, count in self.session.execute(
            select(JobRow.status, func.count()).group_by(JobRow.status))}
        oldest = self.session.scalar(select(func.min(JobRow.created_at)).where(
            JobRow.status == JobStatus.QUEUED.value))
        return counts, oldest

    def due_ids(self, now: datetime, limit: int) -> Sequence[str]:
        """Jobs with a part whose retention has run out (see retention/reaper.py)."""
        return self.session.scalars(
            select(JobRow.id)
            .where(JobRow.next_expiry_at <= now)
            .order_by(JobRow.next_expiry_at)
            .limit(limit)
        ).all()

    def delete_row(self, job_id: str) -> None:
        self.session.execute(delete(JobRow).where(JobRow.id == job_id))

    def matching(self, tenant_id: str, environment: str, before: datetime,
                 statuses: Collection[str], submitted_by: str | None = None) -> Sequence[str]:
        """Ids of a caller's jobs created before ``before`` in ``statuses`` (bulk delete)."""
        return self.session.scalars(
            select(JobRow.id).where(
                JobRow.tenant_id == tenant_id, JobRow.environment == environment,
                JobRow.created_at < before, JobRow.status.in_(list(statuses)),
                *_submitted_by(submitted_by),
            )
        ).all()

    def newest_first(self, tenant_id: str, environment: str, statuses: Collection[str], *,
                     submitted_by: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, after: tuple[datetime, str] | None = None,
                     limit: int) -> list[JobRecord]:
        """A caller's jobs in ``statuses``, newest first, created in [since, until) and
        after the position ``after`` = (created_at, id) of the previous page's last job."""
        query = select(JobRow).where(
            JobRow.tenant_id == tenant_id, JobRow.environment == environment,
            JobRow.status.in_(list(statuses)), *_submitted_by(submitted_by),
        )
        if since is not None:
            query = query.where(JobRow.created_at >= since)
        if until is not None:
            query = query.where(JobRow.created_at < until)
        if after is not None:
            at, job_id = after
            query = query.where(or_(JobRow.created_at < at,
                                    and_(JobRow.created_at == at, JobRow.id < job_id)))
        return [JobRecord.of(row) for row in self.session.scalars(
            query.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
        )]

    def finish_running(self, command: FinishJob, holder: str) -> bool:
        """Record a running job's outcome while ``holder`` holds its lease; False if it
        stopped running meanwhile (deleted) or its lease passed to another worker."""
        dropped = {"wrapped_dek": None} if command.drop_wrapped_dek else {}
        result = self.session.execute(
            update(JobRow)
            .where(JobRow.id == command.job_id, JobRow.status == JobStatus.RUNNING.value,
                   JobRow.lease_owner == holder)
            .values(status=command.status.value, completed_at=command.completed_at,
                    expires_at=command.expires_at, input_expires_at=command.input_expires_at,
                    outputs_expires_at=command.outputs_expires_at,
                    metadata_expires_at=command.metadata_expires_at,
                    error_code=command.error_code, error_detail=command.error_detail,
                    pages_done=command.pages_done,
                    stored_objects=list(command.stored_objects),
                    next_expiry_at=command.next_expiry_at, **dropped)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def _row(self, job_id: str) -> JobRow:
        row = self.session.get(JobRow, job_id)
        if row is None:
            raise LookupError(f"no job {job_id!r}")
        return row

    def tombstone(self, command: TombstoneJob) -> None:
        row = self._row(command.job_id)
        row.status = JobStatus.DELETED.value
        row.deleted_at, row.metadata_expires_at = command.deleted_at, command.metadata_expires_at
        row.wrapped_dek = row.customer_wrapped_dek = row.error_detail = None
        row.next_expiry_at = command.next_expiry_at

    def set_stored_objects(self, command: SetStoredObjects) -> None:
        row = self._row(command.job_id)
        row.stored_objects = list(command.stored_objects)
        row.next_expiry_at = command.next_expiry_at


class UsageRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add_pages(self, tenant_id: str, key_id: str, day: str, pages: int, limit: int) -> bool:
        """Count ``pages`` against the key's ``day`` unless that passes ``limit``; atomic."""
        added = self.session.execute(
            update(KeyUsageRow)
            .where(KeyUsageRow.key_id == key_id, KeyUsageRow.day == day,
                   KeyUsageRow.pages + pages <= limit)
            .values(pages=KeyUsageRow.pages + pages)
            .execution_options(synchronize_session=False)
        )
        if getattr(added, "rowcount", 0) == 1:
            return True
        if pages > limit or self.session.get(KeyUsageRow, (key_id, day)) is not None:
            return False
        try:
            with self.session.begin_nested():
                self.session.add(
                    KeyUsageRow(key_id=key_id, day=day, tenant_id=tenant_id, pages=pages)
                )
        except IntegrityError:  # a concurrent request created the day's row first
            return self.add_pages(tenant_id, key_id, day, pages, limit)
        return True


class RetentionRepository:
    """Retention policies, per environment: the tenant's (scope 'tenant') and per-key
    overrides (scope = the key id, in the key's environment)."""

    TENANT_SCOPE = "tenant"

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, tenant_id: str, scope: str,
            environment: str) -> RetentionPolicyRecord | None:
        row = self.session.get(RetentionPolicyRow, (tenant_id, scope, environment))
        return None if row is None else RetentionPolicyRecord.of(row)

    def hold(self, tenant_id: str) -> None:
        """Hold the tenant's policies until the transaction ends, before reading one that a
        change starts from: a second change waits, then starts from the first's (without
        it, two first changes both inserted the row, and two others lost one's change).
        The tenant's row is locked FOR NO KEY UPDATE, which leaves its jobs' inserts free."""
        self.session.execute(select(TenantRow.id).where(TenantRow.id == tenant_id)
                             .with_for_update(key_share=True))

    def put(self, command: SetRetentionPolicy) -> None:
        key = (command.tenant_id, command.scope, command.environment.value)
        row = self.session.get(RetentionPolicyRow, key)
        if row is None:
            row = RetentionPolicyRow(tenant_id=command.tenant_id, scope=command.scope,
                                     environment=command.environment.value)
            self.session.add(row)
        row.seconds, row.updated_at = dict(command.seconds), command.at
        row.updated_by = command.by

"""Tenant-scoped queries in one place: no caller filters by tenant on its own.

Every read of a job or key for a caller goes through a method that takes the
caller's tenant (and environment), so another tenant's id simply is not found.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from ocrvault.model import JobStatus
from ocrvault.store.tables import (
    ApiKeyRow,
    AuditChainRow,
    AuditEntryRow,
    Base,
    JobRow,
    KeyUsageRow,
    RetentionPolicyRow,
    TenantRow,
)

CHAIN_ID = 1

# Statements on hot paths (authentication and audit appends run on every request) are
# built once, with bound parameters: building one costs more than running it.
_BY_SECRET = select(ApiKeyRow).where(
    or_(ApiKeyRow.digest == bindparam("digest"), ApiKeyRow.previous_digest == bindparam("digest"))
)
_CHAIN = Base.metadata.tables["audit_chain"]
_NEXT_SEQ = (
    update(_CHAIN).where(_CHAIN.c.id == CHAIN_ID).values(head_seq=_CHAIN.c.head_seq + 1)
    .returning(_CHAIN.c.head_seq, _CHAIN.c.head_hash)
)
_SET_HEAD = update(_CHAIN).where(_CHAIN.c.id == CHAIN_ID).values(
    head_hash=bindparam("digest"), head_mac_version=bindparam("version"), head_mac=bindparam("mac")
)
_INSERT_ENTRY = insert(Base.metadata.tables["audit_entries"])


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

    def by_secret(self, digest: str) -> ApiKeyRow | None:
        """The key whose current or previous (rotated) secret has this digest."""
        return self.session.scalar(_BY_SECRET, {"digest": digest})

    def for_tenant(self, key_id: str, tenant_id: str,
                   environments: Collection[str]) -> ApiKeyRow | None:
        return self.session.scalar(
            select(ApiKeyRow).where(
                ApiKeyRow.id == key_id,
                ApiKeyRow.tenant_id == tenant_id,
                _in_environments(ApiKeyRow.environment, environments),
            )
        )

    def list_for_tenant(self, tenant_id: str,
                        environments: Collection[str]) -> Sequence[ApiKeyRow]:
        return self.session.scalars(
            select(ApiKeyRow)
            .where(ApiKeyRow.tenant_id == tenant_id,
                   _in_environments(ApiKeyRow.environment, environments))
            .order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        ).all()

    def made_by(self, tenant_id: str, maker_ids: Collection[str]) -> Sequence[ApiKeyRow]:
        """The keys that any of ``maker_ids`` made (one generation), in any environment."""
        if not maker_ids:
            return []
        return self.session.scalars(
            select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id,
                                    ApiKeyRow.created_by.in_(list(maker_ids)))
        ).all()

    def touch(self, key_id: str, now: datetime) -> None:
        self.session.execute(
            update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=now)
        )


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: JobRow) -> None:
        self.session.add(row)

    def for_owner(self, job_id: str, tenant_id: str, environment: str,
                  submitted_by: str | None = None) -> JobRow | None:
        """The job, if it is the tenant's in ``environment`` (and, given ``submitted_by``,
        that key submitted it)."""
        return self.session.scalar(
            select(JobRow).where(
                JobRow.id == job_id,
                JobRow.tenant_id == tenant_id,
                JobRow.environment == environment,
                *_submitted_by(submitted_by),
            )
        )

    def by_id(self, job_id: str, *, lock: bool = False) -> JobRow | None:
        """Unscoped: only for workers and the reaper, never for a caller's request.

        ``lock``: for a read that decides a write, hold the row until the transaction ends
        (SELECT ... FOR UPDATE; PostgreSQL lets two transactions read it at once, where
        SQLite's single writer refuses the second one's write).
        """
        return self.session.get(JobRow, job_id, with_for_update=lock or None)

    def by_ids(self, job_ids: Collection[str], *, lock: bool = False) -> Sequence[JobRow]:
        """Unscoped, like :meth:`by_id` (``lock`` too, in id order): the reaper's batches."""
        if not job_ids:
            return []
        query = select(JobRow).where(JobRow.id.in_(list(job_ids)))
        if lock:
            query = query.order_by(JobRow.id).with_for_update()
        return self.session.scalars(query).all()

    def active_count_for_key(self, tenant_id: str, key_id: str) -> int:
        """Queued and running jobs a key has submitted: its concurrent-jobs quota."""
        return int(self.session.scalar(
            select(func.count()).select_from(JobRow).where(
                JobRow.tenant_id == tenant_id, JobRow.api_key_id == key_id,
                JobRow.status.in_((JobStatus.QUEUED.value, JobStatus.RUNNING.value)),
            )
        ) or 0)

    def claim(self, job_id: str, now: datetime) -> bool:
        """Atomically move a queued job to running; False if someone else has it."""
        result = self.session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == JobStatus.QUEUED.value)
            .values(status=JobStatus.RUNNING.value, started_at=now,
                    attempts=JobRow.attempts + 1, pages_done=0)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def record_progress(self, job_id: str, pages_done: int) -> None:
        """A running job's pages done so far (nothing once it stopped running)."""
        self.session.execute(
            update(JobRow).where(JobRow.id == job_id, JobRow.status == JobStatus.RUNNING.value)
            .values(pages_done=pages_done)
        )

    def requeue_running(self) -> int:
        """At start-up of the embedded deployment, running jobs were interrupted."""
        result = self.session.execute(
            update(JobRow).where(JobRow.status == JobStatus.RUNNING.value)
            .values(status=JobStatus.QUEUED.value)
        )
        return int(getattr(result, "rowcount", 0))

    def queued(self) -> list[tuple[str, str]]:
        """(job id, tenant id) of every queued job, oldest first."""
        rows = self.session.execute(
            select(JobRow.id, JobRow.tenant_id).where(JobRow.status == JobStatus.QUEUED.value)
            .order_by(JobRow.created_at)
        ).all()
        return [(job_id, tenant_id) for job_id, tenant_id in rows]

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
                     limit: int) -> Sequence[JobRow]:
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
        return self.session.scalars(
            query.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
        ).all()

    def finish_running(self, job_id: str, **values: Any) -> bool:
        """Record a running job's outcome; False if it stopped running meanwhile (deleted)."""
        result = self.session.execute(
            update(JobRow).where(JobRow.id == job_id, JobRow.status == JobStatus.RUNNING.value)
            .values(**values)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


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


class AuditRepository:
    """The audit log's rows. Caller-facing reads take the tenant; the unscoped ones
    (``chain``, ``after``, ``first_seq_from``) serve verification, export and retention."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def next_seq(self) -> tuple[int, str]:
        """Lock the chain for this transaction and take the next sequence number.

        Returns (the new entry's seq, the head hash it links to). One UPDATE ... RETURNING,
        so SQLite takes its write lock (waiting up to busy_timeout) and PostgreSQL the row
        lock before the head is read: concurrent appenders, in any process, queue here
        instead of forking the chain. The caller sets the new head with :meth:`set_head`.
        """
        seq, head_hash = self.session.execute(_NEXT_SEQ).one()
        return int(seq), str(head_hash)

    def set_head(self, digest: str, mac_version: int, mac: str) -> None:
        self.session.execute(_SET_HEAD, {"digest": digest, "version": mac_version, "mac": mac})

    def claim_chain(self) -> AuditChainRow:
        """The chain row, locked for this transaction (as :meth:`next_seq` does)."""
        self.session.execute(
            update(AuditChainRow).where(AuditChainRow.id == CHAIN_ID)
            .values(head_seq=AuditChainRow.head_seq)
            .execution_options(synchronize_session=False)
        )
        return self.chain()

    def chain(self) -> AuditChainRow:
        row = self.session.get(AuditChainRow, CHAIN_ID, populate_existing=True)
        if row is None:
            raise LookupError("the audit_chain row is missing; the schema is not migrated")
        return row

    def insert(self, values: Mapping[str, Any]) -> None:
        """A new entry, as column values (no ORM unit of work: appends are hot)."""
        self.session.execute(_INSERT_ENTRY, dict(values))

    def for_tenant(self, entry_id: str, tenant_id: str,
                   environments: Collection[str | None]) -> AuditEntryRow | None:
        return self.session.scalar(
            select(AuditEntryRow).where(
                AuditEntryRow.id == entry_id, AuditEntryRow.tenant_id == tenant_id,
                _in_environments(AuditEntryRow.environment, environments),
            )
        )

    def page(self, tenant_id: str, environments: Collection[str | None], *, after_seq: int,
             limit: int, since: datetime | None = None, until: datetime | None = None,
             action: str | None = None, actor: str | None = None,
             target: str | None = None) -> Sequence[AuditEntryRow]:
        """One tenant's entries after ``after_seq``, oldest first, filtered."""
        query = select(AuditEntryRow).where(
            AuditEntryRow.tenant_id == tenant_id,
            _in_environments(AuditEntryRow.environment, environments),
            AuditEntryRow.seq > after_seq,
        )
        for column, value in ((AuditEntryRow.action, action),
                              (AuditEntryRow.actor_key_id, actor),
                              (AuditEntryRow.target_id, target)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(AuditEntryRow.at >= since)
        if until is not None:
            query = query.where(AuditEntryRow.at < until)
        return self.session.scalars(query.order_by(AuditEntryRow.seq).limit(limit)).all()

    def after(self, seq: int, limit: int) -> Sequence[AuditEntryRow]:
        """Unscoped, in chain order: for verification and the operator's export."""
        return self.session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.seq > seq)
            .order_by(AuditEntryRow.seq).limit(limit)
        ).all()

    def by_seq(self, seq: int) -> AuditEntryRow | None:
        return self.session.get(AuditEntryRow, seq)

    def first_seq_from(self, cutoff: datetime) -> int | None:
        """The first entry written at or after ``cutoff``: retention keeps it and all later."""
        return self.session.scalar(
            select(func.min(AuditEntryRow.seq)).where(AuditEntryRow.at >= cutoff)
        )

    def delete_through(self, seq: int) -> int:
        result = self.session.execute(delete(AuditEntryRow).where(AuditEntryRow.seq <= seq))
        return int(getattr(result, "rowcount", 0))


class RetentionRepository:
    """Retention policies, per environment: the tenant's (scope 'tenant') and per-key
    overrides (scope = the key id, in the key's environment)."""

    TENANT_SCOPE = "tenant"

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, tenant_id: str, scope: str, environment: str) -> RetentionPolicyRow | None:
        return self.session.get(RetentionPolicyRow, (tenant_id, scope, environment))

    def put(self, tenant_id: str, scope: str, environment: str, seconds: dict[str, int],
            now: datetime, actor: str | None) -> None:
        row = self.get(tenant_id, scope, environment)
        if row is None:
            self.session.add(RetentionPolicyRow(tenant_id=tenant_id, scope=scope,
                                                environment=environment, seconds=seconds,
                                                updated_at=now, updated_by=actor))
        else:
            row.seconds, row.updated_at, row.updated_by = seconds, now, actor

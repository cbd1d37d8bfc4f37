"""Destroying a job's data, whole (delete, metadata expiry) or part by part (retention).

Retention owns it: the reaper calls it at expiry, and jobs/ calls it for a caller's
delete; it knows nothing of jobs/.

Whole purge, in an order that is safe against a crash at any point:

1. one transaction turns the row into a tombstone, drops its wrapped data key and
   marks it due for the reaper now: from that instant the job is gone for every
   reader, and every copy of its blobs (backups included) is undecryptable;
2. the blobs are deleted;
3. the tombstone's object list is cleared and its next due time set to when its
   metadata expires (the row itself is deleted then).

A crash between steps leaves a tombstone that is due, so the reaper finishes it.
Part expiry deletes the due blobs first and then drops them from the row; the API
hides a part from its expiry time on, whatever the reaper's lag, so a crash in
between only delays the physical deletion. Every step is idempotent: several
reapers may race on one job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditSink
from ocrvault.clock import Clock
from ocrvault.environments import Environment
from ocrvault.errors import ErrorCode, ResourceError
from ocrvault.model import DeletionReceipt, JobStatus
from ocrvault.retention.policy import RetentionPolicy
from ocrvault.store.db import Database, Transaction
from ocrvault.store.documents import ObjectKind, SealedDocuments
from ocrvault.store.repository import JobRepository
from ocrvault.store.tables import JobRow


def policy_of(row: JobRow) -> RetentionPolicy:
    return RetentionPolicy(**row.retention) if row.retention else RetentionPolicy()


def expiry_of(row: JobRow, kind: str) -> datetime | None:
    """When a stored object of ``row`` goes under its retention (None: not yet set)."""
    if kind == ObjectKind.RESULT:
        return row.expires_at
    if kind.startswith("output-"):
        return row.outputs_expires_at
    return row.input_expires_at  # the input and what travels with it


def next_due(row: JobRow) -> datetime | None:
    """The earliest time the reaper has work on ``row``."""
    times = [expiry_of(row, kind) for kind in row.stored_objects]
    times.append(row.metadata_expires_at)
    present = [t for t in times if t is not None]
    return min(present) if present else None


def gone_parts(row: JobRow, now: datetime) -> list[str]:
    """Parts of a finished job that retention has taken, as the API reports them."""
    parts = {"input": row.input_expires_at, "result": row.expires_at,
             "outputs": row.outputs_expires_at}
    return [name for name, at in parts.items() if at is not None and at <= now]


def _reaper(row: JobRow) -> Actor:
    return Actor.system("reaper", row.tenant_id, Environment(row.environment))


class Shredder:
    def __init__(self, db: Database, documents: SealedDocuments, clock: Clock,
                 audit: AuditSink) -> None:
        self.db = db
        self.documents = documents
        self.clock = clock
        self.audit = audit

    def _tombstone(self, row: JobRow, now: datetime, event: AuditEvent,
                   session: Transaction) -> list[str]:
        """Step 1 on a row in an open transaction: drop its keys, mark it due; audited the
        first time. Returns the objects it still lists."""
        if row.deleted_at is None:
            row.deleted_at = now
            self.audit.record(event, session)
        if row.metadata_expires_at is None:
            row.metadata_expires_at = now + timedelta(seconds=policy_of(row).job_metadata)
        row.status = JobStatus.DELETED.value
        row.wrapped_dek = None
        row.customer_wrapped_dek = None
        row.error_detail = None
        row.next_expiry_at = now  # due at once, should we crash before step 3
        return list(row.stored_objects)

    def purge(self, job_id: str, by: Actor) -> DeletionReceipt:
        """Destroy one job's data now, for the caller ``by``."""
        with self.db.transaction() as session:
            # Locked: a deletion racing this one (or the reaper) waits, then finds the
            # tombstone, so the deletion is recorded and audited once.
            row = JobRepository(session).by_id(job_id, lock=True)
            if row is None:
                raise ResourceError(ErrorCode.JOB_NOT_FOUND, "No such job.")
            deleted = self._tombstone(row, self.clock(), AuditEvent(
                AuditAction.JOB_DELETED, by, target_id=job_id), session)
            tenant_id, deleted_at = row.tenant_id, row.deleted_at
        assert deleted_at is not None
        self.db.scrub()
        self.documents.delete_all(tenant_id, job_id)
        with self.db.transaction() as session:
            row = JobRepository(session).by_id(job_id)
            if row is not None:
                row.stored_objects = []
                row.next_expiry_at = row.metadata_expires_at
        return DeletionReceipt(id=job_id, deleted_at=deleted_at, deleted=[*deleted, "data_key"])

    def expire_due(self, job_ids: Sequence[str]) -> list[datetime]:
        """Apply retention to a batch of due jobs in two transactions; returns when each
        job's work was due (for the lag). The caller scrubs the database afterwards.

        Whole jobs (deleted, or past their metadata's expiry) are tombstoned first; parts
        past their expiry are deleted from the blob store before the rows stop listing
        them. Rows that are not (or no longer) due are left alone.
        """
        now = self.clock()
        whole: dict[str, str] = {}  # job id -> tenant id
        parts: dict[str, tuple[str, list[str]]] = {}
        due_times: list[datetime] = []
        with self.db.transaction() as session:
            for row in JobRepository(session).by_ids(job_ids, lock=True):
                if row.next_expiry_at is None or row.next_expiry_at > now:
                    continue
                due_times.append(row.next_expiry_at)
                if row.status == JobStatus.DELETED or (
                        row.metadata_expires_at is not None and row.metadata_expires_at <= now):
                    self._tombstone(row, now, AuditEvent(
                        AuditAction.JOB_EXPIRED, _reaper(row), target_id=row.id,
                        detail={"deleted": "all"}), session)
                    whole[row.id] = row.tenant_id
                else:
                    parts[row.id] = (row.tenant_id, [
                        kind for kind in row.stored_objects
                        if (at := expiry_of(row, kind)) is not None and at <= now])
        for job_id, tenant_id in whole.items():
            self.documents.delete_all(tenant_id, job_id)
        for job_id, (tenant_id, kinds) in parts.items():
            for kind in kinds:
                self.documents.delete(tenant_id, job_id, ObjectKind(kind))
        with self.db.transaction() as session:
            jobs = JobRepository(session)
            for row in jobs.by_ids([*whole, *parts]):
                if row.id in whole:
                    self._finish_whole(jobs, row, now)
                else:
                    self._finish_parts(row, parts[row.id][1], session)
        return due_times

    @staticmethod
    def _finish_whole(jobs: JobRepository, row: JobRow, now: datetime) -> None:
        if row.metadata_expires_at is not None and row.metadata_expires_at <= now:
            jobs.delete_row(row.id)
        else:
            row.stored_objects = []
            row.next_expiry_at = row.metadata_expires_at

    def _finish_parts(self, row: JobRow, deleted: list[str], session: Transaction) -> None:
        row.stored_objects = [k for k in row.stored_objects if k not in deleted]
        row.next_expiry_at = next_due(row)
        if deleted:
            self.audit.record(AuditEvent(
                AuditAction.JOB_EXPIRED, _reaper(row), target_id=row.id,
                detail={"deleted": sorted(deleted)}), session)

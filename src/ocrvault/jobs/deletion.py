"""Destroying a job's data, whole (delete, metadata expiry) or part by part (retention).

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

from datetime import datetime, timedelta

from ocrvault.access.keys import Environment
from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditSink
from ocrvault.clock import Clock
from ocrvault.errors import ErrorCode, ResourceError
from ocrvault.model import DeletionReceipt, JobStatus
from ocrvault.retention.policy import RetentionPolicy
from ocrvault.store.db import Database
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

    def purge(self, job_id: str, by: Actor | None = None, *,
              scrub: bool = True) -> DeletionReceipt:
        """Destroy the job's data; ``by`` is the caller who deleted it, None the reaper.

        The first purge of a job is audited in the tombstone's own transaction. With
        ``scrub`` False the caller scrubs the database once for a whole batch.
        """
        with self.db.transaction() as session:
            row = JobRepository(session).by_id(job_id)
            if row is None:
                raise ResourceError(ErrorCode.JOB_NOT_FOUND, "No such job.")
            now = self.clock()
            if row.deleted_at is None:
                row.deleted_at = now
                event = AuditEvent(AuditAction.JOB_DELETED, by, target_id=job_id) if by else (
                    AuditEvent(AuditAction.JOB_EXPIRED, _reaper(row), target_id=job_id,
                               detail={"deleted": "all"}))
                self.audit.record(event, session)
            if row.metadata_expires_at is None:
                row.metadata_expires_at = now + timedelta(seconds=policy_of(row).job_metadata)
            row.status = JobStatus.DELETED.value
            row.wrapped_dek = None
            row.customer_wrapped_dek = None
            row.error_detail = None
            row.next_expiry_at = now  # due at once, should we crash before step 3
            tenant_id, deleted_at = row.tenant_id, row.deleted_at
            deleted = list(row.stored_objects)
        if scrub:
            self.db.scrub()
        self.documents.delete_all(tenant_id, job_id)
        with self.db.transaction() as session:
            row = JobRepository(session).by_id(job_id)
            if row is not None:
                row.stored_objects = []
                row.next_expiry_at = row.metadata_expires_at
        return DeletionReceipt(id=job_id, deleted_at=deleted_at, deleted=[*deleted, "data_key"])

    def expire(self, job_id: str) -> datetime | None:
        """Apply retention to one due job; returns when that work was due (for the lag).

        The caller scrubs the database afterwards (the reaper does once per pass)."""
        now = self.clock()
        with self.db.transaction() as session:
            row = JobRepository(session).by_id(job_id)
            if row is None or row.next_expiry_at is None or row.next_expiry_at > now:
                return None
            due_at = row.next_expiry_at
            whole = row.status == JobStatus.DELETED or (
                row.metadata_expires_at is not None and row.metadata_expires_at <= now)
            due_parts = [kind for kind in row.stored_objects
                         if (expiry := expiry_of(row, kind)) is not None and expiry <= now]
            tenant_id = row.tenant_id
        if whole:
            self.purge(job_id, scrub=False)
            with self.db.transaction() as session:
                jobs = JobRepository(session)
                row = jobs.by_id(job_id)
                if row is not None and row.metadata_expires_at is not None \
                        and row.metadata_expires_at <= now:
                    jobs.delete_row(job_id)
            return due_at
        for kind in due_parts:
            self.documents.delete(tenant_id, job_id, ObjectKind(kind))
        with self.db.transaction() as session:
            row = JobRepository(session).by_id(job_id)
            if row is not None:
                row.stored_objects = [k for k in row.stored_objects if k not in due_parts]
                row.next_expiry_at = next_due(row)
                if due_parts:
                    self.audit.record(AuditEvent(
                        AuditAction.JOB_EXPIRED, _reaper(row), target_id=job_id,
                        detail={"deleted": sorted(due_parts)}), session)
        return due_at

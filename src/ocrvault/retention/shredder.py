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

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditSink
from ocrvault.clock import Clock
from ocrvault.environments import Environment
from ocrvault.errors import ErrorCode, ResourceError
from ocrvault.model import DeletionReceipt, JobStatus
from ocrvault.retention.policy import RetentionPolicy
from ocrvault.store.blobs import BlobStoreUnavailable
from ocrvault.store.commands import SetStoredObjects, TombstoneJob
from ocrvault.store.db import Database, Transaction
from ocrvault.store.documents import ObjectKind, SealedDocuments
from ocrvault.store.records import JobRecord
from ocrvault.store.repository import JobRepository
from ocrvault.webhooks.events import EventType, queue_job_event

log = logging.getLogger(__name__)

def policy_of(job: JobRecord) -> RetentionPolicy:
    return RetentionPolicy(**job.retention) if job.retention else RetentionPolicy()


def expiry_of(job: JobRecord, kind: str) -> datetime | None:
    """When a stored object of ``job`` goes under its retention (None: not yet set)."""
    if kind == ObjectKind.RESULT:
        return job.expires_at
    if kind.startswith("output-"):
        return job.outputs_expires_at
    return job.input_expires_at  # the input and what travels with it


def next_due(job: JobRecord) -> datetime | None:
    """The earliest time the reaper has work on ``job``."""
    times = [expiry_of(job, kind) for kind in job.stored_objects]
    times.append(job.metadata_expires_at)
    present = [t for t in times if t is not None]
    return min(present) if present else None


def gone_parts(job: JobRecord, now: datetime) -> list[str]:
    """Parts of a finished job that retention has taken, as the API reports them."""
    parts = {"input": job.input_expires_at, "result": job.expires_at,
             "outputs": job.outputs_expires_at}
    return [name for name, at in parts.items() if at is not None and at <= now]


def _reaper(job: JobRecord) -> Actor:
    return Actor.system("reaper", job.tenant_id, Environment(job.environment))


class Shredder:
    def __init__(self, db: Database, documents: SealedDocuments, clock: Clock,
                 audit: AuditSink) -> None:
        self.db = db
        self.documents = documents
        self.clock = clock
        self.audit = audit

    def _tombstone(self, job: JobRecord, now: datetime, event: AuditEvent,
                   session: Transaction) -> datetime:
        """Step 1 on a job, in an open transaction: drop its keys, mark it due; audited the
        first time. Returns when it was deleted."""
        if job.deleted_at is None:
            self.audit.record(event, session)
        deleted_at = job.deleted_at or now
        JobRepository(session).tombstone(TombstoneJob(
            job.id, deleted_at=deleted_at,
            metadata_expires_at=job.metadata_expires_at
            or now + timedelta(seconds=policy_of(job).job_metadata),
            next_expiry_at=now,  # due at once, should we crash before step 3
        ))
        return deleted_at

    def purge(self, job_id: str, by: Actor) -> DeletionReceipt:
        """Destroy one job's data now, for the caller ``by``."""
        with self.db.transaction() as session:
            # Locked: a deletion racing this one (or the reaper) waits, then finds the
            # tombstone, so the deletion is recorded, audited and announced once.
            job = JobRepository(session).by_id(job_id, lock=True)
            if job is None:
                raise ResourceError(ErrorCode.JOB_NOT_FOUND, "No such job.")
            now = self.clock()
            if job.deleted_at is None:
                queue_job_event(session, job, EventType.JOB_DELETED, JobStatus.DELETED, now)
            deleted_at = self._tombstone(job, now, AuditEvent(
                AuditAction.JOB_DELETED, by, target_id=job_id), session)
        self.db.scrub()
        try:
            self.documents.delete_all(job.tenant_id, job_id)
        except BlobStoreUnavailable as error:
            # The data key is gone: the job is deleted and unreadable for everyone. The row
            # stays due, so the reaper removes the ciphertext once the store answers; a 503
            # here would only make the caller's retry meet 410 job_deleted.
            log.warning("job %s deleted; its objects are left to the reaper: %s", job_id, error)
        else:
            with self.db.transaction() as session:
                jobs = JobRepository(session)
                tombstone = jobs.by_id(job_id)
                if tombstone is not None:
                    jobs.set_stored_objects(
                        SetStoredObjects(job_id, (), tombstone.metadata_expires_at))
        return DeletionReceipt(id=job_id, deleted_at=deleted_at,
                               deleted=[*job.stored_objects, "data_key"])

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
            for job in JobRepository(session).by_ids(job_ids, lock=True):
                if job.next_expiry_at is None or job.next_expiry_at > now:
                    continue
                due_times.append(job.next_expiry_at)
                if job.status == JobStatus.DELETED or (
                        job.metadata_expires_at is not None and job.metadata_expires_at <= now):
                    if job.status != JobStatus.DELETED and ObjectKind.RESULT in job.stored_objects:
                        queue_job_event(session, job, EventType.JOB_EXPIRED, job.status, now)
                    self._tombstone(job, now, AuditEvent(
                        AuditAction.JOB_EXPIRED, _reaper(job), target_id=job.id,
                        detail={"deleted": "all"}), session)
                    whole[job.id] = job.tenant_id
                else:
                    parts[job.id] = (job.tenant_id, [
                        kind for kind in job.stored_objects
                        if (at := expiry_of(job, kind)) is not None and at <= now])
        for job_id, tenant_id in whole.items():
            self.documents.delete_all(tenant_id, job_id)
        for job_id, (tenant_id, kinds) in parts.items():
            for kind in kinds:
                self.documents.delete(tenant_id, job_id, ObjectKind(kind))
        with self.db.transaction() as session:
            jobs = JobRepository(session)
            for job in jobs.by_ids([*whole, *parts]):
                if job.id in whole:
                    self._finish_whole(jobs, job, now)
                else:
                    self._finish_parts(jobs, job, parts[job.id][1], session)
        return due_times

    @staticmethod
    def _finish_whole(jobs: JobRepository, job: JobRecord, now: datetime) -> None:
        if job.metadata_expires_at is not None and job.metadata_expires_at <= now:
            jobs.delete_row(job.id)
        else:
            jobs.set_stored_objects(SetStoredObjects(job.id, (), job.metadata_expires_at))

    def _finish_parts(self, jobs: JobRepository, job: JobRecord, deleted: list[str],
                      session: Transaction) -> None:
        left = replace(job, stored_objects=tuple(k for k in job.stored_objects
                                                 if k not in deleted))
        jobs.set_stored_objects(SetStoredObjects(job.id, left.stored_objects, next_due(left)))
        if ObjectKind.RESULT in deleted:
            queue_job_event(session, job, EventType.JOB_EXPIRED, job.status, self.clock())
        if deleted:
            self.audit.record(AuditEvent(
                AuditAction.JOB_EXPIRED, _reaper(job), target_id=job.id,
                detail={"deleted": sorted(deleted)}), session)

"""Destroying a job's data: crypto-shred first, then the blobs, then the bookkeeping.

Order matters for crash safety. Step 1 commits the tombstone and drops the wrapped
data key in one transaction: from that instant the job is gone for every reader,
and every copy of its blobs (backups included) is undecryptable. Step 2 deletes
the blobs. Step 3 clears ``stored_objects``. A crash between steps leaves a
tombstone with ``stored_objects`` still listed; the reaper sweeps those again.
Every step is idempotent, so several reapers may race on one job.
"""

from __future__ import annotations

from ocrvault.clock import Clock
from ocrvault.errors import ErrorCode, ResourceError
from ocrvault.model import DeletionReceipt, JobStatus
from ocrvault.store.db import Database
from ocrvault.store.documents import SealedDocuments
from ocrvault.store.repository import JobRepository


class Shredder:
    def __init__(self, db: Database, documents: SealedDocuments, clock: Clock) -> None:
        self.db = db
        self.documents = documents
        self.clock = clock

    def purge(self, job_id: str) -> DeletionReceipt:
        with self.db.transaction() as session:
            row = JobRepository(session).by_id(job_id)
            if row is None:
                raise ResourceError(ErrorCode.JOB_NOT_FOUND, "No such job.")
            if row.deleted_at is None:
                row.deleted_at = self.clock()
            row.status = JobStatus.DELETED.value
            row.wrapped_dek = None
            row.error_detail = None
            tenant_id, deleted_at = row.tenant_id, row.deleted_at
            deleted = list(row.stored_objects)
        self.documents.delete_all(tenant_id, job_id)
        with self.db.transaction() as session:
            row = JobRepository(session).by_id(job_id)
            if row is not None:
                row.stored_objects = []
        return DeletionReceipt(id=job_id, deleted_at=deleted_at, deleted=deleted + ["data_key"])

"""What the database says about jobs, read from the tables directly: tests of leases, the outbox
and worker crashes check the rows, not what the services report about themselves."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text

from ocrvault.audit import AuditAction
from ocrvault.store.db import Database
from ocrvault.store.tables import JobRow


def job_row(db: Database, job_id: str) -> dict[str, Any]:
    columns = (JobRow.status, JobRow.attempts, JobRow.lease_owner, JobRow.lease_expires_at,
               JobRow.completed_at, JobRow.error_code, JobRow.pages_done)
    with db.engine.connect() as connection:
        row = connection.execute(select(*columns).where(JobRow.id == job_id)).one()
        return dict(row._mapping)


def completions(db: Database, job_id: str) -> int:
    """How many times the job's outcome was recorded (one audit event each)."""
    with db.engine.connect() as connection:
        return int(connection.execute(
            text("SELECT count(*) FROM audit_entries WHERE action = :action "
                 "AND target_id = :id"),
            {"action": AuditAction.JOB_PROCESSED.value, "id": job_id}).scalar_one())


def outbox_ids(db: Database) -> list[str]:
    with db.engine.connect() as connection:
        return list(connection.execute(text("SELECT job_id FROM job_outbox")).scalars())

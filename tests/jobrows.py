"""What the database says about jobs, read with plain SQL: tests of leases, the outbox
and worker crashes check the rows, not what the services report about themselves."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from ocrvault.audit import AuditAction
from ocrvault.store.db import Database
from ocrvault.store.repository import JobRepository


def job_row(db: Database, job_id: str) -> dict[str, Any]:
    with db.transaction() as session:
        row = JobRepository(session).by_id(job_id)
        assert row is not None
        return {name: getattr(row, name) for name in (
            "status", "attempts", "lease_owner", "lease_expires_at", "completed_at",
            "error_code", "pages_done")}


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

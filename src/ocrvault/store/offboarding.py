"""The database's part of offboarding a tenant: once its keys are destroyed (in the key
store), drop every wrapped data key of its jobs, revoke its API keys, and make all its
content due, so the reaper deletes the blobs on its next pass."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from ocrvault.model import JobStatus
from ocrvault.store.tables import ApiKeyRow, JobRow


@dataclass(frozen=True, slots=True)
class Scrubbed:
    jobs: int
    api_keys: int


def scrub_tenant(session: Session, tenant_id: str, now: datetime) -> Scrubbed:
    jobs = session.execute(
        update(JobRow).where(JobRow.tenant_id == tenant_id,
                             JobRow.status != JobStatus.DELETED.value)
        .values(wrapped_dek=None, customer_wrapped_dek=None, expires_at=now,
                input_expires_at=now, outputs_expires_at=now, next_expiry_at=now)
        .execution_options(synchronize_session=False))
    keys = session.execute(
        update(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id, ApiKeyRow.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False))
    return Scrubbed(int(getattr(jobs, "rowcount", 0) or 0),
                    int(getattr(keys, "rowcount", 0) or 0))

"""The typed answers of the v1 API as the client sees them.

Frozen pydantic models; fields the server adds later are ignored, and enums the server
may grow (scopes, audit actions, output formats) are plain strings, so an older client
keeps working against a newer server. The OCR result is :class:`ocrvault.model.Document`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from ocrvault.model import DeletionReceipt, Document, JobError, JobStatus, PartExpiries

__all__ = [
    "AuditEntry", "AuditPage", "BulkDeletion", "DeletionReceipt", "Document", "Engine", "Job",
    "JobCreated", "JobError", "JobPage", "JobStatus", "Key", "KeyCreated", "Language",
    "PartExpiries", "RetentionPolicy",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class JobCreated(_Model):
    """The answer to a submission: poll the job by ``id``."""

    id: str
    status: JobStatus
    created_at: datetime
    expires_at: datetime | None = None


class Job(_Model):
    """A job's status; ``result`` once it has succeeded (None in listings and once expired).

    ``pages_done``/``pages_total`` are None when the server does not report progress.
    """

    id: str
    status: JobStatus
    created_at: datetime
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    languages: list[str] = []
    outputs: list[str] = []
    page_count: int | None = None
    pages_done: int | None = None
    pages_total: int | None = None
    error: JobError | None = None
    result: Document | None = None
    expires: PartExpiries | None = None
    expired: list[str] = []


class JobPage(_Model):
    """One page of ``GET /v1/jobs``; pass ``next_cursor`` back for the next (None: the end)."""

    jobs: list[Job]
    next_cursor: str | None = None


class BulkDeletion(_Model):
    deleted: int
    ids: list[str]


class RetentionPolicy(_Model):
    """Seconds each kind of data is kept after its job finishes, for ``environment``."""

    input: int
    result: int
    outputs: int
    job_metadata: int
    failed_inputs: int
    environment: str


class Key(_Model):
    """An API key as it may be shown after it was made: never its secret."""

    id: str
    name: str
    environment: str
    scopes: list[str]
    hint: str
    created_at: datetime
    created_by: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    last_used_at: datetime | None = None
    rotated_at: datetime | None = None
    previous_secret_expires_at: datetime | None = None
    allowed_ips: list[str] = []
    rate_limit_per_minute: int | None = None
    max_concurrent_jobs: int | None = None
    max_pages_per_day: int | None = None
    job_visibility: str | None = None


class KeyCreated(Key):
    """A key just made or rotated: the only answer that holds its ``secret``."""

    secret: str

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return f"KeyCreated(id={self.id!r}, name={self.name!r}, hint={self.hint!r})"

    __str__ = __repr__


class AuditEntry(_Model):
    id: str
    at: datetime
    tenant_id: str | None = None
    environment: str | None = None
    actor_key_id: str | None = None
    actor_name: str
    action: str
    target_id: str | None = None
    client_ip: str | None = None
    request_id: str | None = None
    outcome: str
    reason: str | None = None
    detail: str | None = None


class AuditPage(_Model):
    entries: list[AuditEntry]
    next_cursor: str | None = None


class Language(_Model):
    """A language the server reads: pass ``code`` in ``languages``."""

    code: str
    name: str
    engines: list[str] = []


class Engine(_Model):
    name: str
    version: str
    languages: list[str] = []
    default: bool = False

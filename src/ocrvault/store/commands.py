"""What the repositories are asked to write: one frozen command per kind of change.

A command names every value it writes, so a change is read (and type-checked) where it
is made, instead of as keyword arguments or attributes set on a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from ocrvault.environments import Environment
from ocrvault.model import JobStatus
from ocrvault.store.records import JobRecord


@dataclass(frozen=True, slots=True)
class NewTenant:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key to store: its digest and hint, never its secret."""

    id: str
    tenant_id: str
    name: str
    environment: Environment
    digest: str
    hint: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    allowed_ips: tuple[str, ...] | None  # CIDRs; None: any address
    rate_limit_per_minute: int | None
    max_concurrent_jobs: int | None
    max_pages_per_day: int | None
    job_visibility: str


@dataclass(frozen=True, slots=True)
class RevokeKey:
    key_id: str
    at: datetime
    by: str | None  # the revoking key; None: the operator
    with_key: str | None  # the key whose revocation takes this one down; None: directly


@dataclass(frozen=True, slots=True)
class RotateSecret:
    """A new secret for the key; the current one becomes the previous, valid until
    ``previous_expires_at`` (a previous one still in grace is dropped)."""

    key_id: str
    digest: str
    hint: str
    at: datetime
    previous_expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to store as queued, with its wrapped data key and retention snapshot."""

    id: str
    tenant_id: str
    api_key_id: str | None
    environment: Environment
    created_at: datetime
    expires_at: datetime
    retention: Mapping[str, int]
    metadata_expires_at: datetime | None
    next_expiry_at: datetime | None
    languages: tuple[str, ...]
    page_selection: tuple[int, ...]
    outputs: tuple[str, ...]
    input_format: str
    input_bytes: int
    page_count: int
    pages_requested: str | None
    pages_missing: str | None
    wrapped_dek: bytes | None
    master_key_version: int | None
    customer_wrapped_dek: bytes | None
    customer_key_sha256: str | None
    stored_objects: tuple[str, ...]
    key_epoch: int | None = None  # the epoch key window the DEK is under (tenant_keys.py)


@dataclass(frozen=True, slots=True)
class FinishJob:
    """A running job's outcome. ``drop_wrapped_dek``: from now on only the customer's key
    opens the job."""

    job_id: str
    status: JobStatus
    completed_at: datetime
    expires_at: datetime | None
    input_expires_at: datetime | None
    outputs_expires_at: datetime | None
    metadata_expires_at: datetime | None
    error_code: str | None
    error_detail: str | None
    pages_done: int | None
    stored_objects: tuple[str, ...]
    drop_wrapped_dek: bool
    next_expiry_at: datetime | None = None

    @property
    def keeps_input(self) -> bool:
        """Whether the job's input outlives its finish (the policy keeps it for a while)."""
        return self.input_expires_at is not None and self.input_expires_at > self.completed_at

    def applied_to(self, job: JobRecord) -> JobRecord:
        """``job`` as it will be once this is written (to work out what falls due when)."""
        return replace(
            job, status=self.status, completed_at=self.completed_at,
            expires_at=self.expires_at, input_expires_at=self.input_expires_at,
            outputs_expires_at=self.outputs_expires_at,
            metadata_expires_at=self.metadata_expires_at, error_code=self.error_code,
            error_detail=self.error_detail, pages_done=self.pages_done,
            stored_objects=self.stored_objects, next_expiry_at=self.next_expiry_at,
            wrapped_dek=None if self.drop_wrapped_dek else job.wrapped_dek,
        )


@dataclass(frozen=True, slots=True)
class TombstoneJob:
    """Turn a job into a content-free tombstone: both wrapped data keys dropped (which
    crypto-shreds its blobs), the error detail too, due for the reaper at
    ``next_expiry_at``."""

    job_id: str
    deleted_at: datetime
    metadata_expires_at: datetime
    next_expiry_at: datetime


@dataclass(frozen=True, slots=True)
class SetStoredObjects:
    """The objects a job still has in the blob store, and when the reaper is next due."""

    job_id: str
    stored_objects: tuple[str, ...]
    next_expiry_at: datetime | None


@dataclass(frozen=True, slots=True)
class SetRetentionPolicy:
    """A tenant's policy (scope 'tenant') or a key's override (scope = the key id)."""

    tenant_id: str
    scope: str
    environment: Environment
    seconds: Mapping[str, int]
    at: datetime
    by: str | None


@dataclass(frozen=True, slots=True)
class NewWebhookEndpoint:
    """An endpoint to store, with its signing secret already sealed."""

    id: str
    tenant_id: str
    environment: Environment
    url: str
    events: tuple[str, ...]
    description: str | None
    sealed_secret: bytes
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True, slots=True)
class ChangeWebhookEndpoint:
    """New values for an endpoint's url, events or description (None: unchanged). A new
    url makes a failing endpoint active again: it is worth trying."""

    endpoint_id: str
    at: datetime
    url: str | None = None
    events: tuple[str, ...] | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class RotateWebhookSecret:
    """A new sealed secret; the current one keeps signing until ``previous_expires_at``."""

    endpoint_id: str
    sealed_secret: bytes
    previous_expires_at: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class NewWebhookMessage:
    """One event for the outbox, to be delivered to each of ``endpoint_ids``."""

    id: str
    tenant_id: str
    environment: Environment
    type: str
    job_id: str | None
    body: str
    created_at: datetime
    endpoint_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt of a claimed delivery came to. ``retry_at`` None: no retry (it
    succeeded, or it was the last)."""

    delivery_id: str
    owner: str
    attempt: int
    endpoint_id: str
    message_id: str
    event_type: str
    at: datetime
    succeeded: bool
    status_code: int | None
    latency_ms: int | None
    error: str | None
    retry_at: datetime | None
    failing_after: int  # consecutive failed attempts that mark the endpoint failing

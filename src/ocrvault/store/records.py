"""What the repositories hand out: frozen records, built from rows inside store/.

ORM rows never leave store/: a row read in one transaction and changed after it would
either be written back by accident or silently not at all. A record is a snapshot;
to change what is stored, a service sends the repository a command (store/commands.py).

Job records carry typed status and environment (only ocrvault writes them). Key records
carry the stored values as stored (scopes, environment and address ranges as text): the
key restrictions (access/restrictions.py) must see, and refuse, a value they do not
understand, rather than this module raising on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from ocrvault.environments import Environment
from ocrvault.model import JobStatus
from ocrvault.store.tables import (
    ApiKeyRow,
    JobRow,
    RetentionPolicyRow,
    TenantRow,
    WebhookAttemptRow,
    WebhookEndpointRow,
)


@dataclass(frozen=True, slots=True)
class TenantRecord:
    id: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, row: TenantRow) -> TenantRecord:
        return cls(id=row.id, name=row.name, created_at=row.created_at)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored key: its digests, never a secret. See tables.ApiKeyRow for each field."""

    id: str
    tenant_id: str
    name: str
    environment: str
    digest: str
    hint: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoked_with: str | None = None
    last_used_at: datetime | None = None
    previous_digest: str | None = None
    previous_expires_at: datetime | None = None
    rotated_at: datetime | None = None
    allowed_ips: tuple[str, ...] | None = None
    rate_limit_per_minute: int | None = None
    max_concurrent_jobs: int | None = None
    max_pages_per_day: int | None = None
    job_visibility: str = "tenant"

    @classmethod
    def of(cls, row: ApiKeyRow) -> ApiKeyRecord:
        return cls(
            id=row.id, tenant_id=row.tenant_id, name=row.name, environment=row.environment,
            digest=row.digest, hint=row.hint, scopes=tuple(row.scopes),
            created_at=row.created_at, created_by=row.created_by, expires_at=row.expires_at,
            revoked_at=row.revoked_at, revoked_by=row.revoked_by,
            revoked_with=row.revoked_with, last_used_at=row.last_used_at,
            previous_digest=row.previous_digest, previous_expires_at=row.previous_expires_at,
            rotated_at=row.rotated_at,
            allowed_ips=None if row.allowed_ips is None else tuple(row.allowed_ips),
            rate_limit_per_minute=row.rate_limit_per_minute,
            max_concurrent_jobs=row.max_concurrent_jobs,
            max_pages_per_day=row.max_pages_per_day, job_visibility=row.job_visibility,
        )


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job's content-free facts. See tables.JobRow for each field."""

    id: str
    tenant_id: str
    api_key_id: str | None
    environment: Environment
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None
    deleted_at: datetime | None
    languages: tuple[str, ...]
    page_selection: tuple[int, ...] | None
    outputs: tuple[str, ...]
    input_format: str | None
    input_bytes: int | None
    page_count: int | None
    pages_done: int | None
    pages_requested: str | None
    pages_missing: str | None
    attempts: int
    error_code: str | None
    error_detail: str | None
    wrapped_dek: bytes | None
    master_key_version: int | None
    customer_wrapped_dek: bytes | None
    customer_key_sha256: str | None
    stored_objects: tuple[str, ...]
    retention: Mapping[str, int] | None
    input_expires_at: datetime | None
    outputs_expires_at: datetime | None
    metadata_expires_at: datetime | None
    next_expiry_at: datetime | None

    @classmethod
    def of(cls, row: JobRow) -> JobRecord:
        return cls(
            id=row.id, tenant_id=row.tenant_id, api_key_id=row.api_key_id,
            environment=Environment(row.environment), status=JobStatus(row.status),
            created_at=row.created_at, started_at=row.started_at,
            completed_at=row.completed_at, expires_at=row.expires_at,
            deleted_at=row.deleted_at, languages=tuple(row.languages),
            page_selection=None if row.page_selection is None else tuple(row.page_selection),
            outputs=tuple(row.outputs), input_format=row.input_format,
            input_bytes=row.input_bytes, page_count=row.page_count, pages_done=row.pages_done,
            pages_requested=row.pages_requested, pages_missing=row.pages_missing,
            attempts=row.attempts or 0, error_code=row.error_code,
            error_detail=row.error_detail, wrapped_dek=row.wrapped_dek,
            master_key_version=row.master_key_version,
            customer_wrapped_dek=row.customer_wrapped_dek,
            customer_key_sha256=row.customer_key_sha256,
            stored_objects=tuple(row.stored_objects or ()),
            retention=None if row.retention is None else MappingProxyType(dict(row.retention)),
            input_expires_at=row.input_expires_at, outputs_expires_at=row.outputs_expires_at,
            metadata_expires_at=row.metadata_expires_at, next_expiry_at=row.next_expiry_at,
        )


@dataclass(frozen=True, slots=True)
class RetentionPolicyRecord:
    """A stored policy: seconds by kind of data (see retention/policy.py)."""

    tenant_id: str
    scope: str
    environment: str
    seconds: Mapping[str, int]
    updated_at: datetime
    updated_by: str | None

    @classmethod
    def of(cls, row: RetentionPolicyRow) -> RetentionPolicyRecord:
        return cls(tenant_id=row.tenant_id, scope=row.scope, environment=row.environment,
                   seconds=MappingProxyType(dict(row.seconds)), updated_at=row.updated_at,
                   updated_by=row.updated_by)


@dataclass(frozen=True, slots=True)
class WebhookEndpointRecord:
    """A stored endpoint: its secrets sealed, never in clear. See tables.WebhookEndpointRow."""

    id: str
    tenant_id: str
    environment: Environment
    url: str
    events: tuple[str, ...]
    description: str | None
    sealed_secret: bytes
    previous_sealed_secret: bytes | None
    previous_expires_at: datetime | None
    status: str
    consecutive_failures: int
    created_at: datetime
    created_by: str | None
    updated_at: datetime

    @classmethod
    def of(cls, row: WebhookEndpointRow) -> WebhookEndpointRecord:
        return cls(id=row.id, tenant_id=row.tenant_id, environment=Environment(row.environment),
                   url=row.url, events=tuple(row.events), description=row.description,
                   sealed_secret=row.sealed_secret,
                   previous_sealed_secret=row.previous_sealed_secret,
                   previous_expires_at=row.previous_expires_at, status=row.status,
                   consecutive_failures=row.consecutive_failures or 0,
                   created_at=row.created_at, created_by=row.created_by,
                   updated_at=row.updated_at)


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery a dispatcher holds the lease on: what it needs to send this attempt."""

    id: str
    attempt: int  # this attempt's number, from 1
    message_id: str
    event_type: str
    body: str
    endpoint: WebhookEndpointRecord


@dataclass(frozen=True, slots=True)
class WebhookAttemptRecord:
    """One line of an endpoint's delivery log."""

    delivery_id: str
    message_id: str
    event_type: str
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: int | None
    outcome: str
    error: str | None

    @classmethod
    def of(cls, row: WebhookAttemptRow) -> WebhookAttemptRecord:
        return cls(delivery_id=row.delivery_id, message_id=row.message_id,
                   event_type=row.event_type, attempt=row.attempt, at=row.at,
                   status_code=row.status_code, latency_ms=row.latency_ms,
                   outcome=row.outcome, error=row.error)

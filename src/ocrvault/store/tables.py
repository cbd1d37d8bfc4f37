"""The database schema (SQLAlchemy 2 ORM). No column ever holds document content.

Job rows keep only content-free facts (status, times, sizes, page count, the
wrapped data key); the input, result and outputs live in the blob store as
ciphertext. Scrubbing a row to a tombstone (``status='deleted'``) removes the
wrapped key, which is what crypto-shreds every copy of the job's blobs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware datetimes: SQLite would otherwise drop the zone."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class TenantRow(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(8))
    # SHA-256 of the whole key: keys are 160+ random bits, so a fast hash is enough.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(32), doc="prefix and last 4: shown in listings")
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str | None] = mapped_column(String(36), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Who revoked the key (a key id; NULL: the operator), and the key whose revocation
    # took this one down with it (NULL: revoked directly). See AccessService.revoke_key.
    revoked_by: Mapped[str | None] = mapped_column(String(36))
    revoked_with: Mapped[str | None] = mapped_column(String(36))
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # After a rotation the previous secret keeps working until previous_expires_at.
    previous_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    previous_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    allowed_ips: Mapped[list[str] | None] = mapped_column(JSON, doc="CIDRs; NULL: any address")
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    max_concurrent_jobs: Mapped[int | None] = mapped_column(Integer)
    max_pages_per_day: Mapped[int | None] = mapped_column(Integer)
    # "own": the key sees and deletes only the jobs it submitted; "tenant": all of them.
    job_visibility: Mapped[str] = mapped_column(String(8), default="tenant",
                                                server_default="tenant")


class KeyUsageRow(Base):
    """Pages a limited key has submitted on one UTC day (only keys with a page quota)."""

    __tablename__ = "key_usage"

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    pages: Mapped[int] = mapped_column(Integer)


class AuditEntryRow(Base):
    """One audit event. Never document content, file names or secrets.

    Each entry belongs to one hash chain (``chain``: ``tenant:<id>``, ``deployment`` for
    events of no tenant, ``legacy`` for the single chain written before 0007) at position
    ``pos``; (chain, pos) is unique, so a fork (two entries claiming one place) fails
    instead of happening. ``seq`` orders the whole log for paging and export: the
    database assigns it (never a counter row), so appends to different chains never wait
    for each other. No foreign key to tenants: the log must outlive what it describes.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        UniqueConstraint("chain", "pos", name="uq_audit_entries_chain_pos"),
        Index("ix_audit_entries_tenant_seq", "tenant_id", "seq"),
        Index("ix_audit_entries_at", "at"),
        # Never reuse a seq, even the highest one's after it is gone: cursors hold them.
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(String(48))
    pos: Mapped[int] = mapped_column(Integer)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    tenant_id: Mapped[str | None] = mapped_column(String(36))
    environment: Mapped[str | None] = mapped_column(String(8))
    actor_key_id: Mapped[str | None] = mapped_column(String(36))
    actor_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str | None] = mapped_column(String(64))
    client_ip: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text, doc="content-free values, canonical JSON")
    prev_hash: Mapped[str] = mapped_column(String(64))
    mac_version: Mapped[int] = mapped_column(Integer)
    mac: Mapped[str] = mapped_column(String(64))


class AuditChainRow(Base):
    """One hash chain's signed head and retention checkpoint (anchor).

    An append locks its chain's row only, so tenants never wait for each other.
    """

    __tablename__ = "audit_chains"

    chain: Mapped[str] = mapped_column(String(48), primary_key=True)
    head_pos: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    head_mac_version: Mapped[int | None] = mapped_column(Integer)
    head_mac: Mapped[str | None] = mapped_column(String(64))
    anchor_pos: Mapped[int] = mapped_column(Integer)
    anchor_hash: Mapped[str] = mapped_column(String(64))
    anchor_mac_version: Mapped[int | None] = mapped_column(Integer)
    anchor_mac: Mapped[str | None] = mapped_column(String(64))


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_expires_at", "expires_at"),
        Index("ix_jobs_api_key_status", "api_key_id", "status"),
        Index("ix_jobs_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_jobs_status_lease", "status", "lease_expires_at"),
        Index("ix_jobs_tenant_key_epoch", "tenant_id", "key_epoch"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    api_key_id: Mapped[str | None] = mapped_column(String(36))
    environment: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    languages: Mapped[list[str]] = mapped_column(JSON)
    page_selection: Mapped[list[int] | None] = mapped_column(JSON)
    outputs: Mapped[list[str]] = mapped_column(JSON)
    input_format: Mapped[str | None] = mapped_column(String(16))
    input_bytes: Mapped[int | None] = mapped_column(Integer)
    page_count: Mapped[int | None] = mapped_column(Integer)  # the pages selected (to read)
    pages_done: Mapped[int | None] = mapped_column(Integer)  # progress while running
    # Pages handed out to the cluster's workers under the current lease (jobs/spread.py).
    pages_claimed: Mapped[int | None] = mapped_column(Integer)
    # The 'pages' selection as asked, and what it asked for beyond the document's last page.
    pages_requested: Mapped[str | None] = mapped_column(String(1000))
    pages_missing: Mapped[str | None] = mapped_column(String(2000))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Who runs the job (a claim token: host, pid, claim) and until when: a running job
    # whose lease has run out is returned to the queue (see jobs/leases.py).
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(Text)
    # The job's data key, wrapped by a master key; NULL once the job is shredded.
    wrapped_dek: Mapped[bytes | None] = mapped_column(LargeBinary)
    master_key_version: Mapped[int | None] = mapped_column(Integer)
    # The window of the tenant's epoch key the DEK is wrapped under (crypto/tenant_keys.py);
    # NULL for DEKs wrapped by the keyring before tenant keys.
    key_epoch: Mapped[int | None] = mapped_column(Integer)
    # Customer-held key (SSE-C): the DEK wrapped under it, and the key's SHA-256 to tell a
    # wrong key from a damaged row. Once the job finishes, wrapped_dek is dropped and
    # only the customer's key opens the job.
    customer_wrapped_dek: Mapped[bytes | None] = mapped_column(LargeBinary)
    customer_key_sha256: Mapped[str | None] = mapped_column(String(44))
    # Which sealed objects exist, so deletion and receipts need no blob listing.
    stored_objects: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Retention, snapshotted at submission (seconds per kind; see retention/policy.py).
    # expires_at above is the result's expiry; the API treats every part as gone at its
    # own time, and the reaper deletes what is due at next_expiry_at.
    retention: Mapped[dict[str, int] | None] = mapped_column(JSON)
    input_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outputs_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    metadata_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_expiry_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)


class JobOutboxRow(Base):
    """A job committed but perhaps not yet handed to the queue (see jobs/outbox.py).

    Written in the submission's transaction and deleted once the id is enqueued, so a
    crash between the commit and the enqueue leaves a row for the sweep to send.
    """

    __tablename__ = "job_outbox"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class RetentionPolicyRow(Base):
    """A tenant's policy for one environment (scope 'tenant') or one key's override (scope =
    the key id, environment = the key's)."""

    __tablename__ = "retention_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(36), primary_key=True)
    environment: Mapped[str] = mapped_column(String(8), primary_key=True)
    seconds: Mapped[dict[str, int]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(36))


class ClusterLockRow(Base):
    """A lease on work that one node of the cluster does at a time (the scheduler's
    periodic tasks): held by ``owner`` until ``expires_at``, renewed by its holder."""

    __tablename__ = "cluster_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookEndpointRow(Base):
    """A receiver of a tenant's events in one environment. The signing secret is held only
    sealed under the keyring (webhooks/secrets.py); after a rotation the previous one keeps
    signing beside the new one until ``previous_expires_at``."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_tenant_env", "tenant_id", "environment"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    environment: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(500))
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    previous_sealed_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # "active", or "failing" after too many failed attempts in a row (reset by a success).
    status: Mapped[str] = mapped_column(String(16))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookMessageRow(Base):
    """One event, as the outbox holds it: its id (the ``webhook-id`` of every delivery of
    it) and its content-free JSON body, sent byte for byte on every attempt."""

    __tablename__ = "webhook_messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    environment: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[str | None] = mapped_column(String(36))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookDeliveryRow(Base):
    """One message to one endpoint: the outbox row a dispatcher claims under a lease."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_messages.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # pending, succeeded, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebhookAttemptRow(Base):
    """The delivery log: one row per attempt. Never a response body."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_endpoint_at", "endpoint_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[str] = mapped_column(String(36))
    message_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # succeeded, failed
    error: Mapped[str | None] = mapped_column(String(32))  # e.g. timeout, address_refused


class WebhookJobTargetRow(Base):
    """A job submitted with ``callback_url``: its events go to that endpoint only. No
    foreign key to the endpoint: once it is deleted, the job's events go nowhere."""

    __tablename__ = "webhook_job_targets"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"),
                                        primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(36))

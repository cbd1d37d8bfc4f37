"""What the audit log records: a closed set of actions, who did them, and to what.

Actions follow ``<domain>:<object>:<verb>`` (``job:result:read``,
``key:api_key:revoked``). The set is closed: adding an action means adding a member
here and emitting it somewhere, which ``tests/unit/test_audit_actions.py`` checks.
An event holds ids, names of keys, addresses and error codes only: never document
content, file names or secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ocrvault.environments import Environment
from ocrvault.errors import ErrorCode
from ocrvault.principal import Principal, RequestContext


class AuditAction(StrEnum):
    TENANT_CREATED = "tenant:tenant:created"
    # Its tenant key and epoch keys destroyed: everything it stored is unreadable.
    TENANT_OFFBOARDED = "tenant:tenant:offboarded"
    # The tenant key rewrapped under the tenant's own KMS key (or back under the master).
    TENANT_KEY_WRAPPER_CHANGED = "key:tenant_key:wrapper_changed"
    # An epoch key destroyed once nothing under it may live any longer (tenant_keys.py).
    EPOCH_KEY_DESTROYED = "key:epoch_key:destroyed"
    KEY_CREATED = "key:api_key:created"
    KEY_ROTATED = "key:api_key:rotated"
    KEY_REVOKED = "key:api_key:revoked"
    KEY_EXPIRED_USED = "key:api_key:expired_used"
    # The operator's master-key changes (system-wide, from the CLI); the target names the version.
    MASTER_KEY_ROTATED = "key:master_key:rotated"
    MASTER_KEY_REWRAPPED = "key:master_key:rewrapped"
    MASTER_KEY_RETIRED = "key:master_key:retired"
    AUTH_REFUSED = "auth:request:refused"
    # Refusals of one source in one minute past the log's rate: one entry with their count
    # and reason codes (access/refusals.py). None is dropped.
    AUTH_REFUSALS_AGGREGATED = "auth:refusals:aggregated"
    JOB_SUBMITTED = "job:document:submitted"
    # A listing of jobs' metadata (GET /v1/jobs), once when it starts: no content is read.
    JOB_LISTED = "job:metadata:listed"
    JOB_READ_SYNC = "job:document:read_sync"
    # An upload refused as input; the entry holds its size, sniffed type and error code only.
    JOB_REJECTED = "job:document:rejected"
    JOB_PROCESSED = "job:document:processed"
    JOB_RESULT_READ = "job:result:read"
    JOB_OUTPUT_READ = "job:output:read"
    JOB_DELETED = "job:data:deleted"
    JOB_EXPIRED = "job:data:expired"
    POLICY_CHANGED = "policy:retention:changed"
    # An endpoint made, changed or deleted (detail: which), or a delivery redelivered by hand.
    WEBHOOK_CHANGED = "webhook:endpoint:changed"
    WEBHOOK_SECRET_ROTATED = "webhook:secret:rotated"  # noqa: S105 - an action's name
    AUDIT_READ = "audit:log:read"
    AUDIT_EXPORTED = "audit:log:exported"
    AUDIT_PURGED = "audit:log:purged"
    # A tenant's chain began; written to the deployment chain, so a chain deleted whole
    # is missed (audit/chain.py).
    CHAIN_OPENED = "audit:chain:opened"

    @classmethod
    def _missing_(cls, value: object) -> AuditAction | None:
        # Logs written before refusals were aggregated hold the marker that stood for them.
        return cls.AUTH_REFUSALS_AGGREGATED if value == "auth:request:suppressed" else None


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted, in which tenant, from where: an API key, or a named part of the system."""

    name: str
    tenant_id: str | None = None
    environment: Environment | None = None
    key_id: str | None = None
    client_ip: str | None = None
    request_id: str | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(
            name=principal.key_name, tenant_id=principal.tenant_id,
            environment=principal.environment, key_id=principal.key_id,
            client_ip=principal.request.client_ip,
            request_id=principal.request.request_id or None,
        )

    @classmethod
    def anonymous(cls, request: RequestContext) -> Actor:
        """A caller whose key could not be identified."""
        return cls(name="anonymous", client_ip=request.client_ip,
                   request_id=request.request_id or None)

    @classmethod
    def system(cls, part: str, tenant_id: str | None = None,
               environment: Environment | None = None) -> Actor:
        return cls(name=f"system:{part}", tenant_id=tenant_id, environment=environment)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing to record. ``reason`` is an error code, never free text; ``detail`` holds
    content-free values only (e.g. a policy's old and new durations)."""

    action: AuditAction
    actor: Actor
    target_id: str | None = None
    outcome: Outcome = Outcome.SUCCESS
    reason: ErrorCode | None = None
    detail: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A recorded event as readers (and the API) see it; the chain fields stay in the store."""

    id: str
    at: datetime
    tenant_id: str | None
    environment: str | None
    actor_key_id: str | None
    actor_name: str
    action: AuditAction
    target_id: str | None
    client_ip: str | None
    request_id: str | None
    outcome: str
    reason: str | None
    detail: str | None = None

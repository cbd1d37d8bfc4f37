"""Offboarding a tenant: destroy its tenant key, and with it everything it ever stored.

Irreversible, so the caller confirms by typing the tenant's name again. The keys go
first (crypto/tenant_keys.py: the tenant key and every epoch key, from the key store,
which no backup holds): from that moment nothing of the tenant opens, in the live store
or in any backup, before the reaper has deleted a single blob. Then every wrapped data
key of its jobs is dropped (older keyring-wrapped ones included), its API keys are
revoked, its content is made due for the reaper, and the whole is one audit event.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditLog
from ocrvault.clock import Clock
from ocrvault.crypto.tenant_keys import TenantKeys
from ocrvault.errors import ErrorCode, InputRejected, ResourceError
from ocrvault.store.db import Database
from ocrvault.store.offboarding import scrub_tenant
from ocrvault.store.repository import TenantRepository


@dataclass(frozen=True, slots=True)
class Offboarded:
    tenant_id: str
    keys_destroyed: int
    jobs: int
    api_keys_revoked: int


def offboard_tenant(db: Database, tenant_keys: TenantKeys, audit: AuditLog, clock: Clock,
                    name: str, confirm: str) -> Offboarded:
    """Raises InputRejected unless ``confirm`` repeats ``name``, ResourceError for an
    unknown tenant."""
    if confirm != name:
        raise InputRejected(ErrorCode.INVALID_PARAMETER,
                            f"offboarding destroys every key and document of {name!r} for good; "
                            "confirm by repeating the tenant's name exactly")
    with db.transaction() as session:
        tenant = TenantRepository(session).by_name(name)
    if tenant is None:
        raise ResourceError(ErrorCode.NOT_FOUND, f"there is no tenant named {name!r}")
    destroyed = tenant_keys.offboard(tenant.id)
    with db.transaction() as session:
        scrubbed = scrub_tenant(session, tenant.id, clock())
        audit.record(AuditEvent(
            AuditAction.TENANT_OFFBOARDED, Actor.system("cli", tenant.id),
            target_id=f"tenant:{tenant.id}",
            detail={"keys_destroyed": destroyed, "jobs": scrubbed.jobs,
                    "api_keys_revoked": scrubbed.api_keys}), session)
    return Offboarded(tenant.id, destroyed, scrubbed.jobs, scrubbed.api_keys)

"""Reading and changing retention policies, and the effective policy for a new job."""

from __future__ import annotations

from ocrvault.access.principal import Principal
from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditSink
from ocrvault.clock import Clock
from ocrvault.errors import ErrorCode, ResourceError
from ocrvault.retention.policy import RetentionPolicy
from ocrvault.store.db import Database
from ocrvault.store.repository import KeyRepository, RetentionRepository

TENANT = RetentionRepository.TENANT_SCOPE


class RetentionService:
    def __init__(self, db: Database, clock: Clock, audit: AuditSink) -> None:
        self.db = db
        self.clock = clock
        self.audit = audit

    def _stored(self, policies: RetentionRepository, tenant_id: str,
                scope: str) -> RetentionPolicy | None:
        row = policies.get(tenant_id, scope)
        return RetentionPolicy(**row.seconds) if row else None

    def effective(self, tenant_id: str, key_id: str | None) -> RetentionPolicy:
        """The key's override if it has one, else the tenant's policy, else the defaults."""
        with self.db.transaction() as session:
            policies = RetentionRepository(session)
            override = self._stored(policies, tenant_id, key_id) if key_id else None
            return override or self._stored(policies, tenant_id, TENANT) or RetentionPolicy()

    def tenant_policy(self, caller: Principal) -> RetentionPolicy:
        return self.effective(caller.tenant_id, None)

    def key_policy(self, caller: Principal, key_id: str) -> RetentionPolicy:
        self._require_key(caller, key_id)
        return self.effective(caller.tenant_id, key_id)

    def set_tenant_policy(self, caller: Principal, policy: RetentionPolicy) -> RetentionPolicy:
        return self._put(caller, TENANT, policy)

    def set_key_policy(self, caller: Principal, key_id: str,
                       policy: RetentionPolicy) -> RetentionPolicy:
        self._require_key(caller, key_id)
        return self._put(caller, key_id, policy)

    def _put(self, caller: Principal, scope: str, policy: RetentionPolicy) -> RetentionPolicy:
        """Store the policy and audit the change, old and new values, in one transaction."""
        with self.db.transaction() as session:
            policies = RetentionRepository(session)
            old = (self._stored(policies, caller.tenant_id, scope)
                   or self._stored(policies, caller.tenant_id, TENANT) or RetentionPolicy())
            policies.put(caller.tenant_id, scope, policy.as_dict(), self.clock(), caller.key_id)
            target = "retention:tenant" if scope == TENANT else f"retention:key:{scope}"
            self.audit.record(AuditEvent(
                AuditAction.POLICY_CHANGED, Actor.of(caller), target_id=target,
                detail={"old": old.as_dict(), "new": policy.as_dict()}), session)
        return policy

    def _require_key(self, caller: Principal, key_id: str) -> None:
        with self.db.transaction() as session:
            if KeyRepository(session).for_tenant(
                    key_id, caller.tenant_id, (caller.environment.value,)) is None:
                raise ResourceError(ErrorCode.KEY_NOT_FOUND, "No such key in this tenant.")

"""Reading and changing retention policies, and the effective policy for a new job.

Policies are per environment, like jobs: a test key reads and writes the test policy
only, and a job gets the policy of its own environment. A live key that administers
test keys may name the test policy (``environment``); a key override belongs to the
key's environment, and is reached only through a key that lies within the caller's
reach (access/reach.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ocrvault.access.reach import managed_key, refusals_audited
from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditSink
from ocrvault.clock import Clock
from ocrvault.environments import Environment
from ocrvault.errors import AuthError, ErrorCode
from ocrvault.principal import Principal
from ocrvault.retention.policy import RetentionPolicy
from ocrvault.store.commands import SetRetentionPolicy
from ocrvault.store.db import Database
from ocrvault.store.repository import RetentionRepository

TENANT = RetentionRepository.TENANT_SCOPE


class RetentionService:
    def __init__(self, db: Database, clock: Clock, audit: AuditSink) -> None:
        self.db = db
        self.clock = clock
        self.audit = audit

    def _stored(self, policies: RetentionRepository, tenant_id: str, scope: str,
                environment: Environment) -> RetentionPolicy | None:
        stored = policies.get(tenant_id, scope, environment.value)
        return RetentionPolicy(**stored.seconds) if stored else None

    def _effective(self, policies: RetentionRepository, tenant_id: str, key_id: str | None,
                   environment: Environment) -> RetentionPolicy:
        override = self._stored(policies, tenant_id, key_id, environment) if key_id else None
        return (override or self._stored(policies, tenant_id, TENANT, environment)
                or RetentionPolicy())

    def effective(self, tenant_id: str, key_id: str | None,
                  environment: Environment) -> RetentionPolicy:
        """The key's override if it has one, else the tenant's policy for ``environment``,
        else the defaults."""
        with self.db.transaction() as session:
            return self._effective(RetentionRepository(session), tenant_id, key_id, environment)

    def tenant_policy(self, caller: Principal,
                      environment: Environment | None = None) -> RetentionPolicy:
        return self.effective(caller.tenant_id, None, self._administered(caller, environment))

    def set_tenant_policy(self, caller: Principal, changes: Mapping[str, int],
                          environment: Environment | None = None) -> RetentionPolicy:
        """Change the kinds in ``changes`` (seconds by kind); the others keep their value."""
        return self._put(caller, TENANT, self._administered(caller, environment), changes)

    def key_policy(self, caller: Principal, key_id: str) -> RetentionPolicy:
        return self.effective(caller.tenant_id, key_id, self._key_environment(caller, key_id))

    def set_key_policy(self, caller: Principal, key_id: str,
                       changes: Mapping[str, int]) -> RetentionPolicy:
        """Override the key's policy: ``changes`` over the policy its jobs get now."""
        return self._put(caller, key_id, self._key_environment(caller, key_id), changes)

    def _put(self, caller: Principal, scope: str, environment: Environment,
             changes: Mapping[str, int]) -> RetentionPolicy:
        """Store the current policy with ``changes`` applied, and audit the change, old and
        new values, in one transaction (so two partial changes never lose one another)."""
        with self.db.transaction() as session:
            policies = RetentionRepository(session)
            policies.hold(caller.tenant_id)
            old = self._effective(policies, caller.tenant_id,
                                  None if scope == TENANT else scope, environment)
            policy = replace(old, **changes)
            policies.put(SetRetentionPolicy(caller.tenant_id, scope, environment,
                                            policy.as_dict(), self.clock(), caller.key_id))
            target = "retention:tenant" if scope == TENANT else f"retention:key:{scope}"
            self.audit.record(AuditEvent(
                AuditAction.POLICY_CHANGED, Actor.of(caller), target_id=target,
                detail={"environment": environment.value, "old": old.as_dict(),
                        "new": policy.as_dict()}), session)
        return policy

    def _administered(self, caller: Principal, environment: Environment | None) -> Environment:
        """The environment whose tenant policy the caller names: its own by default."""
        environment = environment or caller.environment
        if environment not in caller.administers:
            with refusals_audited(self.audit, caller, f"retention:tenant:{environment.value}"):
                raise AuthError(ErrorCode.FORBIDDEN,
                                "A test key reads and changes the test retention policy only.")
        return environment

    def _key_environment(self, caller: Principal, key_id: str) -> Environment:
        """The environment of a key in the caller's own environment and reach, or raise."""
        with refusals_audited(self.audit, caller, key_id), self.db.transaction() as session:
            key = managed_key(session, caller, key_id, (caller.environment,))
            return Environment(key.environment)

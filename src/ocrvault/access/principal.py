"""Who is calling: what an API key resolves to. Routes see this, never a key or a row."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ocrvault.access.keys import Environment


class Scope(StrEnum):
    READ_SUBMIT = "read:submit"
    JOBS_READ = "jobs:read"
    JOBS_DELETE = "jobs:delete"
    KEYS_MANAGE = "keys:manage"
    AUDIT_READ = "audit:read"
    POLICIES_MANAGE = "policies:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"


class Role(StrEnum):
    ADMIN = "admin"
    DEVELOPER = "developer"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"

    @property
    def scopes(self) -> frozenset[Scope]:
        return _ROLE_SCOPES[self]


_ROLE_SCOPES = {
    Role.ADMIN: frozenset(Scope),
    Role.DEVELOPER: frozenset({Scope.READ_SUBMIT, Scope.JOBS_READ, Scope.JOBS_DELETE}),
    Role.REVIEWER: frozenset({Scope.JOBS_READ}),
    Role.AUDITOR: frozenset({Scope.AUDIT_READ}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    key_id: str
    scopes: frozenset[Scope]
    environment: Environment

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes

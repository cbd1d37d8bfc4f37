"""Who is calling: what an API key resolves to. Routes see this, never a key or a row.

It lies below access/ (which makes principals) and audit/ (which records and authorizes
them), so that neither has to import the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ocrvault.environments import Environment


class Scope(StrEnum):
    READ_SUBMIT = "read:submit"
    JOBS_READ = "jobs:read"
    JOBS_DELETE = "jobs:delete"
    KEYS_MANAGE = "keys:manage"
    AUDIT_READ = "audit:read"
    POLICIES_MANAGE = "policies:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"


class JobVisibility(StrEnum):
    """Which of its tenant's jobs (in its environment) a key sees and deletes."""

    OWN = "own"  # only those it submitted
    TENANT = "tenant"

    def allows(self, other: JobVisibility) -> bool:
        """Whether a key with this visibility may hold (make or manage) one with ``other``."""
        return self is JobVisibility.TENANT or other is JobVisibility.OWN


class Role(StrEnum):
    ADMIN = "admin"
    DEVELOPER = "developer"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"

    @property
    def scopes(self) -> frozenset[Scope]:
        return _ROLE_SCOPES[self]

    @property
    def job_visibility(self) -> JobVisibility:
        """The default for a key made with this role: a developer's key is an integration's,
        which has no business with its colleagues' documents."""
        return JobVisibility.OWN if self is Role.DEVELOPER else JobVisibility.TENANT


_ROLE_SCOPES = {
    Role.ADMIN: frozenset(Scope),
    Role.DEVELOPER: frozenset({Scope.READ_SUBMIT, Scope.JOBS_READ, Scope.JOBS_DELETE}),
    Role.REVIEWER: frozenset({Scope.JOBS_READ}),
    Role.AUDITOR: frozenset({Scope.AUDIT_READ}),
}


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Where a call came from, for the audit log; services get it without FastAPI."""

    request_id: str
    client_ip: str | None = None


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """A key's optional limits; None means unlimited."""

    rate_per_minute: int | None = None
    concurrent_jobs: int | None = None
    pages_per_day: int | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    key_id: str
    scopes: frozenset[Scope]
    environment: Environment
    key_name: str = ""
    limits: KeyLimits = KeyLimits()
    job_visibility: JobVisibility = JobVisibility.TENANT
    request: RequestContext = RequestContext(request_id="")

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes

    @property
    def job_submitter(self) -> str | None:
        """The key whose jobs alone this key sees, or None when it sees the tenant's."""
        return self.key_id if self.job_visibility is JobVisibility.OWN else None

    @property
    def administers(self) -> tuple[Environment, ...]:
        """Environments whose keys and audit entries this key may see and manage.

        Jobs stay strictly per environment; administration is asymmetric so that a
        live admin can manage test keys while a test key (which lives in CI configs
        and laptops) can never reach, revoke or mint a live one.
        """
        return administered_by(self.environment)


def administered_by(environment: Environment) -> tuple[Environment, ...]:
    """The environments a key of ``environment`` administers (see Principal.administers)."""
    if environment is Environment.LIVE:
        return (Environment.LIVE, Environment.TEST)
    return (Environment.TEST,)

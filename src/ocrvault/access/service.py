"""Tenants and API keys: issuing them, and resolving a presented key to a Principal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from ocrvault.access.keys import Environment, digest_of, generate_key, hint_of, parse_key
from ocrvault.access.principal import Principal, Role, Scope
from ocrvault.clock import Clock, utcnow
from ocrvault.errors import AuthError, ErrorCode
from ocrvault.store.db import Database
from ocrvault.store.repository import KeyRepository, TenantRepository
from ocrvault.store.tables import ApiKeyRow, TenantRow

# last_used_at is informational; writing it on every request would serialise
# readers behind the database's single writer.
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly made key. ``secret`` exists only here: it is never stored."""

    tenant_id: str
    key_id: str
    secret: str


class AccessService:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def bootstrap_tenant(self, name: str, environment: Environment = Environment.LIVE) -> IssuedKey:
        """Create the tenant if needed and issue a new admin key for it."""
        with self.db.transaction() as session:
            tenants = TenantRepository(session)
            tenant = tenants.by_name(name)
            if tenant is None:
                tenant = TenantRow(id=str(uuid.uuid4()), name=name, created_at=self.clock())
                tenants.add(tenant)
                session.flush()
            return self._issue(KeyRepository(session), tenant.id, f"{name} admin", Role.ADMIN,
                               environment)

    def issue_key(self, tenant_id: str, name: str, role: Role,
                  environment: Environment = Environment.LIVE) -> IssuedKey:
        with self.db.transaction() as session:
            return self._issue(KeyRepository(session), tenant_id, name, role, environment)

    def has_tenants(self) -> bool:
        with self.db.transaction() as session:
            return TenantRepository(session).count() > 0

    def _issue(self, keys: KeyRepository, tenant_id: str, name: str, role: Role,
               environment: Environment) -> IssuedKey:
        secret = generate_key(environment)
        row = ApiKeyRow(
            id=str(uuid.uuid4()), tenant_id=tenant_id, name=name, environment=environment.value,
            digest=digest_of(secret), hint=hint_of(secret),
            scopes=sorted(s.value for s in role.scopes), created_at=self.clock(),
        )
        keys.add(row)
        return IssuedKey(tenant_id=tenant_id, key_id=row.id, secret=secret)

    def authenticate(self, presented: str | None) -> Principal:
        """Resolve a bearer key; every failure looks the same to the caller."""
        parsed = parse_key(presented) if presented else None
        if parsed is None:
            raise AuthError(ErrorCode.UNAUTHORIZED, "Send a valid API key as 'Authorization: Bearer <key>'.")
        now = self.clock()
        with self.db.transaction() as session:
            keys = KeyRepository(session)
            row = keys.by_digest(parsed.digest)
            if row is None or row.revoked_at is not None or (
                row.expires_at is not None and row.expires_at <= now
            ):
                raise AuthError(ErrorCode.UNAUTHORIZED, "The API key is unknown, revoked or expired.")
            if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
                keys.touch(row.id, now)
            return Principal(
                tenant_id=row.tenant_id, key_id=row.id,
                scopes=frozenset(Scope(s) for s in row.scopes),
                environment=Environment(row.environment),
            )

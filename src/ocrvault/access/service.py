"""Tenants and API keys: issuing, rotating and revoking them, and resolving a presented
key to a Principal.

Keys are found only through the tenant-scoped repository, so another tenant's key is
"not found"; every change commits together with its audit entry. Revocation and
expiry are read from the database on every request (no cache), so they take effect
at the next request on every API node.
"""

from __future__ import annotations

import ipaddress
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ocrvault.access.keys import Environment, digest_of, generate_key, hint_of, parse_key
from ocrvault.access.principal import KeyLimits, Principal, RequestContext, Role, Scope
from ocrvault.access.ratelimit import RateLimiter, TokenBuckets
from ocrvault.access.restrictions import INVALID, Attempt, Refusal, evaluate
from ocrvault.audit.events import Actor, AuditAction, AuditEvent, Outcome
from ocrvault.audit.log import AuditSink
from ocrvault.clock import Clock, utcnow
from ocrvault.errors import (
    AuthError,
    ErrorCode,
    InputRejected,
    OcrVaultError,
    ResourceError,
    Throttled,
)
from ocrvault.store.db import Database, Transaction
from ocrvault.store.repository import KeyRepository, TenantRepository
from ocrvault.store.tables import ApiKeyRow, TenantRow

# last_used_at is informational; writing it on every request would serialise
# readers behind the database's single writer.
_TOUCH_EVERY = timedelta(minutes=1)
MAX_GRACE = timedelta(days=7)
# Refused requests written to the audit log per minute, per source (tenant and address)
# and overall; past either, one "suppressed" entry a minute stands for the rest.
_REFUSALS_PER_SOURCE = 20
_REFUSALS_OVERALL = 600

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A key to make; its scopes and environment are checked against the maker's."""

    name: str
    scopes: frozenset[Scope]
    environment: Environment
    expires_at: datetime | None = None
    allowed_ips: tuple[Network, ...] = ()
    limits: KeyLimits = field(default_factory=KeyLimits)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be shown about a key after it was made (the API's key resource): never its
    secret, only the hint."""

    id: str
    name: str
    environment: Environment
    scopes: tuple[str, ...]
    hint: str
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    rotated_at: datetime | None
    previous_secret_expires_at: datetime | None
    allowed_ips: tuple[str, ...]
    rate_limit_per_minute: int | None
    max_concurrent_jobs: int | None
    max_pages_per_day: int | None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly made (or rotated) key. ``secret`` exists only here: it is never stored."""

    tenant_id: str
    key_id: str
    secret: str
    key: KeyInfo


def info_of(row: ApiKeyRow) -> KeyInfo:
    return KeyInfo(
        id=row.id, name=row.name, environment=Environment(row.environment),
        scopes=tuple(row.scopes), hint=row.hint, created_at=row.created_at,
        created_by=row.created_by, expires_at=row.expires_at, revoked_at=row.revoked_at,
        last_used_at=row.last_used_at, rotated_at=row.rotated_at,
        previous_secret_expires_at=row.previous_expires_at,
        allowed_ips=tuple(row.allowed_ips or ()), rate_limit_per_minute=row.rate_limit_per_minute,
        max_concurrent_jobs=row.max_concurrent_jobs, max_pages_per_day=row.max_pages_per_day,
    )


def _limits_of(row: ApiKeyRow) -> KeyLimits:
    return KeyLimits(rate_per_minute=row.rate_limit_per_minute,
                     concurrent_jobs=row.max_concurrent_jobs,
                     pages_per_day=row.max_pages_per_day)


def _within(child: Network, parents: list[Network]) -> bool:
    return any(child.version == parent.version and child.subnet_of(parent)  # type: ignore[arg-type]
               for parent in parents)


def _escapes(maker: ApiKeyRow, spec: KeySpec) -> str | None:
    """Why a key made by ``maker`` would outlive it or work where it cannot, or None."""
    if maker.expires_at is not None and (spec.expires_at is None
                                         or spec.expires_at > maker.expires_at):
        return "A key cannot make a key that outlives it; give an expires_at no later than its own."
    if maker.allowed_ips:
        parents = [ipaddress.ip_network(cidr) for cidr in maker.allowed_ips]
        if not spec.allowed_ips or not all(_within(net, parents) for net in spec.allowed_ips):
            return ("A key cannot make a key usable from addresses it cannot use; give "
                    "allowed_ips within its own.")
    return None


class AccessService:
    def __init__(self, db: Database, audit: AuditSink, clock: Clock = utcnow,
                 rate_limiter: RateLimiter | None = None) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.rate_limiter = rate_limiter or TokenBuckets(clock)
        # Local on purpose: it guards this node's writes to the log, whatever the deployment.
        self._refusal_rate = TokenBuckets(clock)

    def create_tenant(self, name: str) -> IssuedKey:
        """Create a new tenant and its first admin key; refused if the name is taken."""
        return self._admin_key(name, Environment.LIVE, new_tenant=True)

    def bootstrap_tenant(self, name: str, environment: Environment = Environment.LIVE) -> IssuedKey:
        """Create the tenant if needed and issue a new admin key for it."""
        return self._admin_key(name, environment, new_tenant=False)

    def _admin_key(self, name: str, environment: Environment, *, new_tenant: bool) -> IssuedKey:
        with self.db.transaction() as session:
            tenants = TenantRepository(session)
            tenant = tenants.by_name(name)
            if tenant is not None and new_tenant:
                raise InputRejected(
                    ErrorCode.INVALID_PARAMETER,
                    f"A tenant named {name!r} exists; `ocrvault admin bootstrap --tenant "
                    f"{name}` issues it another admin key.",
                )
            if tenant is None:
                tenant = TenantRow(id=str(uuid.uuid4()), name=name, created_at=self.clock())
                tenants.add(tenant)
                session.flush()
                self.audit.record(AuditEvent(AuditAction.TENANT_CREATED,
                                             Actor.system("admin", tenant.id),
                                             target_id=tenant.id), session)
            return self._issue(session, tenant.id,
                               _spec(f"{name} admin", Role.ADMIN, environment), None)

    def issue_key(self, tenant_id: str, name: str, role: Role,
                  environment: Environment = Environment.LIVE) -> IssuedKey:
        """Issue a key with a role's scopes as the operator (no maker key to check against)."""
        with self.db.transaction() as session:
            return self._issue(session, tenant_id, _spec(name, role, environment), None)

    def create_key(self, principal: Principal, spec: KeySpec) -> IssuedKey:
        """A key made by a caller: never with a scope, environment, lifetime or address
        range the caller's own key lacks."""
        missing = sorted(scope.value for scope in spec.scopes - principal.scopes)
        if missing:
            raise AuthError(ErrorCode.INSUFFICIENT_SCOPE,
                            f"This key lacks the scope(s) {', '.join(missing)} it tried to grant.")
        if spec.environment not in principal.administers:
            raise AuthError(ErrorCode.FORBIDDEN, "A test key can only create test keys.")
        if spec.expires_at is not None and spec.expires_at <= self.clock():
            raise InputRejected(ErrorCode.INVALID_PARAMETER, "expires_at is in the past.")
        with self.db.transaction() as session:
            maker = KeyRepository(session).for_tenant(principal.key_id, principal.tenant_id,
                                                      [principal.environment.value])
            escape = "The key making this request no longer exists." if maker is None else (
                _escapes(maker, spec))
            if escape is not None:
                raise AuthError(ErrorCode.FORBIDDEN, escape)
            return self._issue(session, principal.tenant_id, spec, principal)

    def list_keys(self, principal: Principal) -> list[KeyInfo]:
        with self.db.transaction() as session:
            rows = KeyRepository(session).list_for_tenant(principal.tenant_id,
                                                          principal.administers)
            return [info_of(row) for row in rows]

    def revoke_key(self, principal: Principal, key_id: str) -> KeyInfo:
        """Revoke at once (every secret of the key); revoking again changes nothing."""
        with self.db.transaction() as session:
            row = self._managed(session, principal, key_id)
            if row.revoked_at is None:
                row.revoked_at = self.clock()
                self.audit.record(AuditEvent(AuditAction.KEY_REVOKED, Actor.of(principal),
                                             target_id=row.id), session)
            return info_of(row)

    def rotate_key(self, principal: Principal, key_id: str, grace: timedelta) -> IssuedKey:
        """A new secret for the key; the current one keeps working for ``grace``, then dies.

        A secret still in grace from an earlier rotation dies now: at most two live.
        """
        if not timedelta(0) <= grace <= MAX_GRACE:
            raise InputRejected(ErrorCode.INVALID_PARAMETER,
                                "The grace period is 0 to 604800 seconds (7 days).")
        with self.db.transaction() as session:
            row = self._managed(session, principal, key_id)
            if row.revoked_at is not None:
                raise ResourceError(ErrorCode.KEY_REVOKED, "A revoked key cannot be rotated.")
            now = self.clock()
            secret = generate_key(Environment(row.environment))
            row.previous_digest, row.previous_expires_at = row.digest, now + grace
            row.digest, row.hint, row.rotated_at = digest_of(secret), hint_of(secret), now
            self.audit.record(AuditEvent(AuditAction.KEY_ROTATED, Actor.of(principal),
                                         target_id=row.id), session)
            return IssuedKey(tenant_id=row.tenant_id, key_id=row.id, secret=secret,
                             key=info_of(row))

    def _managed(self, session: Transaction, principal: Principal, key_id: str) -> ApiKeyRow:
        row = KeyRepository(session).for_tenant(key_id, principal.tenant_id,
                                                principal.administers)
        if row is None:
            raise ResourceError(ErrorCode.KEY_NOT_FOUND, f"No key {key_id[:40]!r} for this key.")
        return row

    def has_tenants(self) -> bool:
        with self.db.transaction() as session:
            return TenantRepository(session).count() > 0

    def _issue(self, session: Transaction, tenant_id: str, spec: KeySpec,
               maker: Principal | None) -> IssuedKey:
        secret = generate_key(spec.environment)
        row = ApiKeyRow(
            id=str(uuid.uuid4()), tenant_id=tenant_id, name=spec.name,
            environment=spec.environment.value, digest=digest_of(secret), hint=hint_of(secret),
            scopes=sorted(s.value for s in spec.scopes), created_at=self.clock(),
            created_by=maker.key_id if maker else None, expires_at=spec.expires_at,
            allowed_ips=[str(net) for net in spec.allowed_ips] or None,
            rate_limit_per_minute=spec.limits.rate_per_minute,
            max_concurrent_jobs=spec.limits.concurrent_jobs,
            max_pages_per_day=spec.limits.pages_per_day,
        )
        KeyRepository(session).add(row)
        session.flush()
        actor = Actor.of(maker) if maker else Actor.system("admin", tenant_id)
        self.audit.record(AuditEvent(AuditAction.KEY_CREATED, actor, target_id=row.id), session)
        return IssuedKey(tenant_id=tenant_id, key_id=row.id, secret=secret, key=info_of(row))

    def authenticate(self, presented: str | None, request: RequestContext,
                     scope: Scope) -> Principal:
        """Resolve a bearer key for a call that needs ``scope``, or raise.

        Every restriction of the key is checked (access/restrictions.py), then its rate.
        Refusals are audited, at a bounded rate.
        """
        parsed = parse_key(presented) if presented else None
        if parsed is None:
            raise self._refused(
                Refusal(ErrorCode.UNAUTHORIZED,
                        "Send a valid API key as 'Authorization: Bearer <key>'."),
                Actor.anonymous(request))
        now = self.clock()
        with self.db.transaction() as session:
            keys = KeyRepository(session)
            row = keys.by_secret(parsed.digest)
            refusal = INVALID if row is None else evaluate(Attempt(
                key=row, previous_secret=row.previous_digest == parsed.digest,
                environment=parsed.environment, scope=scope, client_ip=request.client_ip,
                now=now,
            ))
            if row is not None and refusal is None and (
                row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY
            ):
                keys.touch(row.id, now)
        if row is None:
            raise self._refused(INVALID, Actor.anonymous(request))
        actor = Actor(name=row.name, tenant_id=row.tenant_id, environment=parsed.environment,
                      key_id=row.id, client_ip=request.client_ip,
                      request_id=request.request_id or None)
        if refusal is not None:
            raise self._refused(refusal, actor)
        limits = _limits_of(row)
        if limits.rate_per_minute is not None:
            wait = self.rate_limiter.acquire(f"key:{row.id}", limits.rate_per_minute)
            if wait:
                raise self._refused(
                    Refusal(ErrorCode.RATE_LIMITED,
                            f"This key may make {limits.rate_per_minute} requests a minute; "
                            "retry after the time in Retry-After."),
                    actor, retry_after=math.ceil(wait))
        return Principal(
            tenant_id=row.tenant_id, key_id=row.id,
            scopes=frozenset(Scope(s) for s in row.scopes),
            environment=parsed.environment, key_name=row.name, limits=limits, request=request,
        )

    def _refused(self, refusal: Refusal, actor: Actor,
                 retry_after: int | None = None) -> OcrVaultError:
        """The error to raise for ``refusal``, after auditing it unless the log is flooded."""
        action = self._refusal_action(refusal.action, actor)
        if action is not None:
            self.audit.record(AuditEvent(action, actor, target_id=actor.key_id,
                                         outcome=Outcome.FAILURE, reason=refusal.code))
        if refusal.code is ErrorCode.RATE_LIMITED:
            return Throttled(refusal.code, refusal.detail, retry_after)
        return AuthError(refusal.code, refusal.detail)

    def _refusal_action(self, action: AuditAction, actor: Actor) -> AuditAction | None:
        """``action`` while refusals are within rate; past it one suppression marker a
        minute per bucket, else nothing."""
        source = f"source:{actor.tenant_id}:{actor.client_ip}"
        for bucket, per_minute in (("all", _REFUSALS_OVERALL), (source, _REFUSALS_PER_SOURCE)):
            if self._refusal_rate.acquire(bucket, per_minute):
                marked = not self._refusal_rate.acquire(f"marker:{bucket}", 1)
                return AuditAction.AUTH_REFUSALS_SUPPRESSED if marked else None
        return action


def _spec(name: str, role: Role, environment: Environment) -> KeySpec:
    return KeySpec(name=name, scopes=role.scopes, environment=environment)

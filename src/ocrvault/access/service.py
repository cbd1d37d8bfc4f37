"""Tenants and API keys: issuing, rotating and revoking them, and resolving a presented
key to a Principal.

Keys are found only through the tenant-scoped repository, so another tenant's key is
"not found"; every change commits together with its audit entry. A key acts on another
key only when the other lies within its own rights (access/reach.py), the rule that
making a key obeys too. Revoking a key revokes every key it made, transitively.
Revocation and expiry are read from the database on every request (no cache), so they
take effect at the next request on every API node.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ocrvault.access.keys import digest_of, generate_key, hint_of, parse_key
from ocrvault.access.names import name_problem
from ocrvault.access.ratelimit import RateLimiter, TokenBuckets
from ocrvault.access.reach import (
    Network,
    Reach,
    beyond,
    caller_key,
    managed_key,
    refusals_audited,
)
from ocrvault.access.refusals import Aggregate, RefusalTally
from ocrvault.access.restrictions import INVALID, Attempt, Refusal, evaluate
from ocrvault.access.usage import KeyUse
from ocrvault.audit.events import Actor, AuditAction, AuditEvent, Outcome
from ocrvault.audit.log import AuditSink
from ocrvault.clock import Clock, utcnow
from ocrvault.environments import Environment
from ocrvault.errors import (
    AuthError,
    ErrorCode,
    InputRejected,
    Misdirected,
    OcrVaultError,
    ResourceError,
    Throttled,
)
from ocrvault.principal import (
    JobVisibility,
    KeyLimits,
    Principal,
    RequestContext,
    Role,
    Scope,
)
from ocrvault.store.commands import NewApiKey, NewTenant, RevokeKey, RotateSecret
from ocrvault.store.db import Database, Transaction
from ocrvault.store.records import ApiKeyRecord
from ocrvault.store.repository import KeyRepository, TenantRepository
from ocrvault.telemetry import metrics

MAX_GRACE = timedelta(days=7)
# Names the operator gives (a tenant's admin key is "<tenant> admin") may be longer than
# the API's; the column holds 200.
_OPERATOR_NAME_CHARS = 200

BEARER = "as 'Authorization: Bearer <key>'"  # how /v1 takes a key


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A key to make; its scopes and environment are checked against the maker's."""

    name: str
    scopes: frozenset[Scope]
    environment: Environment
    expires_at: datetime | None = None
    allowed_ips: tuple[Network, ...] = ()
    limits: KeyLimits = field(default_factory=KeyLimits)
    # None: the role's default (tenant without a role), narrowed to the maker's own.
    job_visibility: JobVisibility | None = None
    role: Role | None = None

    def reach(self, maker_visibility: JobVisibility) -> Reach:
        return Reach(scopes=frozenset(s.value for s in self.scopes),
                     environment=self.environment, expires_at=self.expires_at,
                     allowed_ips=self.allowed_ips,
                     job_visibility=self.visibility(maker_visibility))

    def visibility(self, maker_visibility: JobVisibility) -> JobVisibility:
        if self.job_visibility is not None:
            return self.job_visibility
        default = self.role.job_visibility if self.role else JobVisibility.TENANT
        return default if maker_visibility.allows(default) else maker_visibility


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
    revoked_by: str | None
    revoked_with: str | None
    last_used_at: datetime | None
    rotated_at: datetime | None
    previous_secret_expires_at: datetime | None
    allowed_ips: tuple[str, ...]
    rate_limit_per_minute: int | None
    max_concurrent_jobs: int | None
    max_pages_per_day: int | None
    job_visibility: JobVisibility


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly made (or rotated) key. ``secret`` exists only here: it is never stored."""

    tenant_id: str
    key_id: str
    secret: str
    key: KeyInfo


def info_of(key: ApiKeyRecord) -> KeyInfo:
    return KeyInfo(
        id=key.id, name=key.name, environment=Environment(key.environment),
        scopes=key.scopes, hint=key.hint, created_at=key.created_at,
        created_by=key.created_by, expires_at=key.expires_at, revoked_at=key.revoked_at,
        revoked_by=key.revoked_by, revoked_with=key.revoked_with,
        last_used_at=key.last_used_at, rotated_at=key.rotated_at,
        previous_secret_expires_at=key.previous_expires_at,
        allowed_ips=key.allowed_ips or (), rate_limit_per_minute=key.rate_limit_per_minute,
        max_concurrent_jobs=key.max_concurrent_jobs, max_pages_per_day=key.max_pages_per_day,
        job_visibility=JobVisibility(key.job_visibility),
    )


def _limits_of(key: ApiKeyRecord) -> KeyLimits:
    return KeyLimits(rate_per_minute=key.rate_limit_per_minute,
                     concurrent_jobs=key.max_concurrent_jobs,
                     pages_per_day=key.max_pages_per_day)


class AccessService:
    def __init__(self, db: Database, audit: AuditSink, clock: Clock = utcnow,
                 rate_limiter: RateLimiter | None = None, region: str | None = None,
                 region_urls: Mapping[str, str] | None = None) -> None:
        self.db = db
        # This deployment's region: keys name it, and keys naming another are sent there.
        self.region = region
        self.region_urls = dict(region_urls or {})
        self.audit = audit
        self.clock = clock
        self.rate_limiter = rate_limiter or TokenBuckets(clock)
        # Local on purpose: it guards this node's writes to the log, whatever the deployment.
        self._refusals = RefusalTally(clock)
        self._use = KeyUse()

    def create_tenant(self, name: str) -> IssuedKey:
        """Create a new tenant and its first admin key; refused if the name is taken."""
        return self._admin_key(name, Environment.LIVE, new_tenant=True)

    def bootstrap_tenant(self, name: str, environment: Environment = Environment.LIVE) -> IssuedKey:
        """Create the tenant if needed and issue a new admin key for it."""
        return self._admin_key(name, environment, new_tenant=False)

    def _admin_key(self, name: str, environment: Environment, *, new_tenant: bool) -> IssuedKey:
        problem = name_problem(name)
        if problem is not None:
            raise InputRejected(ErrorCode.INVALID_PARAMETER, f"Tenant name: {problem}.")
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
                tenant = tenants.add(NewTenant(id=str(uuid.uuid4()), name=name,
                                               created_at=self.clock()))
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
        """A key made by a caller: never with a scope, environment, lifetime, address
        range or job visibility beyond the caller's own key (access/reach.py)."""
        if spec.expires_at is not None and spec.expires_at <= self.clock():
            raise InputRejected(ErrorCode.INVALID_PARAMETER, "expires_at is in the past.")
        with refusals_audited(self.audit, principal, None), self.db.transaction() as session:
            maker = Reach.of(caller_key(session, principal))
            overreach = beyond(maker, spec.reach(maker.job_visibility), "make")
            if overreach is not None:
                raise AuthError(overreach.code, overreach.detail)
            return self._issue(session, principal.tenant_id, spec, principal,
                               spec.visibility(maker.job_visibility))

    def get_key(self, principal: Principal, key_id: str) -> KeyInfo:
        """One key's details, if it lies within the caller's reach."""
        with refusals_audited(self.audit, principal, key_id), self.db.transaction() as session:
            return info_of(managed_key(session, principal, key_id, principal.administers))

    def list_keys(self, principal: Principal) -> list[KeyInfo]:
        with self.db.transaction() as session:
            keys = KeyRepository(session).list_for_tenant(principal.tenant_id,
                                                          principal.administers)
            return [info_of(key) for key in keys]

    def revoke_key(self, principal: Principal, key_id: str) -> KeyInfo:
        """Revoke at once (every secret of the key) with every key it made, transitively,
        in one transaction: a key made by a revoked key would otherwise carry on its
        rights. Each revocation is an audit entry; revoking again changes nothing."""
        with refusals_audited(self.audit, principal, key_id), self.db.transaction() as session:
            # Locked: a revocation racing this one waits, then finds the key revoked.
            key = managed_key(session, principal, key_id, principal.administers, lock=True)
            actor, now = Actor.of(principal), self.clock()
            revoked = self._revoke(session, key, actor, now, with_key=None)
            keys, seen, generation = KeyRepository(session), {key.id}, [key.id]
            while generation:
                children = [c for c in keys.made_by(key.tenant_id, generation)
                            if c.id not in seen]
                for child in children:
                    self._revoke(session, child, actor, now, with_key=key.id)
                seen.update(c.id for c in children)
                generation = [c.id for c in children]
            return info_of(revoked)

    def _revoke(self, session: Transaction, key: ApiKeyRecord, actor: Actor, now: datetime,
                with_key: str | None) -> ApiKeyRecord:
        """``key`` revoked, audited the first time; a revoked key is returned as it is."""
        if key.revoked_at is not None:
            return key
        revoked = KeyRepository(session).revoke(RevokeKey(key.id, now, actor.key_id, with_key))
        self.audit.record(AuditEvent(AuditAction.KEY_REVOKED, actor, target_id=key.id,
                                     detail={"revoked_with": with_key} if with_key else None),
                          session)
        return revoked

    def rotate_key(self, principal: Principal, key_id: str, grace: timedelta) -> IssuedKey:
        """A new secret for the key; the current one keeps working for ``grace``, then dies.

        A secret still in grace from an earlier rotation dies now: at most two live.
        """
        if not timedelta(0) <= grace <= MAX_GRACE:
            raise InputRejected(ErrorCode.INVALID_PARAMETER,
                                "The grace period is 0 to 604800 seconds (7 days).")
        with refusals_audited(self.audit, principal, key_id), self.db.transaction() as session:
            # The key keeps its id, scopes, expiry and allow-list: only its secret changes.
            # Locked: a rotation racing this one waits, then puts this one's secret in grace.
            key = managed_key(session, principal, key_id, principal.administers, lock=True)
            if key.revoked_at is not None:
                raise ResourceError(ErrorCode.KEY_REVOKED, "A revoked key cannot be rotated.")
            now = self.clock()
            secret = generate_key(Environment(key.environment), self.region)
            rotated = KeyRepository(session).rotate(RotateSecret(
                key.id, digest_of(secret), hint_of(secret), at=now,
                previous_expires_at=now + grace))
            self.audit.record(AuditEvent(AuditAction.KEY_ROTATED, Actor.of(principal),
                                         target_id=key.id), session)
            return IssuedKey(tenant_id=key.tenant_id, key_id=key.id, secret=secret,
                             key=info_of(rotated))

    def has_tenants(self) -> bool:
        with self.db.transaction() as session:
            return TenantRepository(session).count() > 0

    def _issue(self, session: Transaction, tenant_id: str, spec: KeySpec,
               maker: Principal | None, visibility: JobVisibility | None = None) -> IssuedKey:
        problem = name_problem(spec.name, _OPERATOR_NAME_CHARS)
        if problem is not None:
            raise InputRejected(ErrorCode.INVALID_PARAMETER, f"Key name: {problem}.")
        secret = generate_key(spec.environment, self.region)
        key = KeyRepository(session).add(NewApiKey(
            id=str(uuid.uuid4()), tenant_id=tenant_id, name=spec.name,
            environment=spec.environment, digest=digest_of(secret), hint=hint_of(secret),
            scopes=tuple(sorted(s.value for s in spec.scopes)), created_at=self.clock(),
            created_by=maker.key_id if maker else None, expires_at=spec.expires_at,
            allowed_ips=tuple(str(net) for net in spec.allowed_ips) or None,
            rate_limit_per_minute=spec.limits.rate_per_minute,
            max_concurrent_jobs=spec.limits.concurrent_jobs,
            max_pages_per_day=spec.limits.pages_per_day,
            job_visibility=(visibility or spec.visibility(JobVisibility.TENANT)).value,
        ))
        actor = Actor.of(maker) if maker else Actor.system("admin", tenant_id)
        self.audit.record(AuditEvent(AuditAction.KEY_CREATED, actor, target_id=key.id), session)
        return IssuedKey(tenant_id=tenant_id, key_id=key.id, secret=secret, key=info_of(key))

    def _misdirected(self, region: str) -> Misdirected:
        url = self.region_urls.get(region)
        where = f"; send it to {url}" if url else ""
        return Misdirected(ErrorCode.WRONG_REGION,
                           f"This key's tenant lives in region {region!r}, not here{where}.",
                           url)

    def authenticate(self, presented: str | None, request: RequestContext,
                     scope: Scope, how: str = BEARER) -> Principal:
        """Resolve a bearer key for a call that needs ``scope``, or raise.

        Every restriction of the key is checked (access/restrictions.py), then its rate.
        Refusals are audited, at a bounded rate. ``how`` tells a caller without a key how
        to send one (a vendor's door asks in the vendor's way).
        """
        parsed = parse_key(presented) if presented else None
        if parsed is None:
            raise self._refused(
                Refusal(ErrorCode.UNAUTHORIZED, f"Send a valid API key {how}."),
                Actor.anonymous(request))
        if parsed.region is not None and parsed.region != self.region:
            raise self._misdirected(parsed.region)
        return self._admit(lambda keys: keys.by_secret(parsed.digest), parsed.environment,
                           lambda key: key.previous_digest == parsed.digest, request, scope)

    def authenticate_link(self, tenant_id: str, key_id: str, environment: Environment,
                          request: RequestContext, scope: Scope) -> Principal:
        """The caller behind a signed link (an ABBYY result URL) made for key ``key_id``:
        the key is checked now, as if it were presented (revoked, expired, IP allow-list,
        environment, rate, scope), so that revoking a key revokes its links too."""
        return self._admit(
            lambda keys: keys.for_tenant(key_id, tenant_id, (environment.value,)),
            environment, lambda _key: False, request, scope)

    def _admit(self, find: Callable[[KeyRepository], ApiKeyRecord | None],
               environment: Environment, previous_secret: Callable[[ApiKeyRecord], bool],
               request: RequestContext, scope: Scope) -> Principal:
        now = self.clock()
        with self.db.transaction() as session:
            keys = KeyRepository(session)
            key = find(keys)
            refusal = INVALID if key is None else evaluate(Attempt(
                key=key, previous_secret=previous_secret(key),
                environment=environment, scope=scope, client_ip=request.client_ip,
                now=now,
            ))
            if key is not None and refusal is None and self._use.due(key.id, key.last_used_at,
                                                                     now):
                keys.touch(key.id, now)
        if key is None:
            raise self._refused(INVALID, Actor.anonymous(request))
        actor = Actor(name=key.name, tenant_id=key.tenant_id, environment=environment,
                      key_id=key.id, client_ip=request.client_ip,
                      request_id=request.request_id or None)
        if refusal is not None:
            raise self._refused(refusal, actor)
        limits = _limits_of(key)
        if limits.rate_per_minute is not None:
            wait = self.rate_limiter.acquire(f"key:{key.id}", limits.rate_per_minute)
            if wait:
                metrics.RATE_LIMIT_HITS.inc()
                raise self._refused(
                    Refusal(ErrorCode.RATE_LIMITED,
                            f"This key may make {limits.rate_per_minute} requests a minute; "
                            "retry after the time in Retry-After."),
                    actor, retry_after=math.ceil(wait))
        return Principal(
            tenant_id=key.tenant_id, key_id=key.id,
            scopes=frozenset(Scope(s) for s in key.scopes),
            environment=environment, key_name=key.name, limits=limits,
            job_visibility=JobVisibility(key.job_visibility), request=request,
        )

    def rehearse(self) -> None:
        """A key check's statements, on a key that cannot exist and rolled back, so that
        a first burst of requests does not wait for them to compile (jobs/rehearsal.py)."""
        with self.db.rolled_back() as session:
            keys = KeyRepository(session)
            keys.by_secret(digest_of(generate_key(Environment.LIVE, self.region)))
            keys.touch(str(uuid.uuid4()), self.clock())

    def _refused(self, refusal: Refusal, actor: Actor,
                 retry_after: int | None = None) -> OcrVaultError:
        """The error to raise for ``refusal``, after accounting for it in the audit log.

        A known key's refusal (the actor has a key id) is always an entry of its own,
        except for rate limiting; the others are counted (access/refusals.py).
        """
        known = actor.key_id is not None and refusal.code is not ErrorCode.RATE_LIMITED
        if known or self._refusals.admit(actor, refusal.code.value):
            self.audit.record(AuditEvent(refusal.action, actor, target_id=actor.key_id,
                                         outcome=Outcome.FAILURE, reason=refusal.code))
        self._record(self._refusals.closed(sweep=False))
        if refusal.code is ErrorCode.RATE_LIMITED:
            return Throttled(refusal.code, refusal.detail, retry_after)
        return AuthError(refusal.code, refusal.detail)

    def flush_refusals(self, *, everything: bool = False) -> int:
        """Record the aggregates of closed windows (of all windows, when ``everything``: at
        stop); returns how many refusals they stand for. Run periodically."""
        aggregates = self._refusals.closed(everything=everything)
        self._record(aggregates)
        return sum(a.count for a in aggregates)

    def _record(self, aggregates: list[Aggregate]) -> None:
        for aggregate in aggregates:
            self.audit.record(AuditEvent(AuditAction.AUTH_REFUSALS_AGGREGATED, aggregate.actor,
                                         outcome=Outcome.FAILURE, detail=aggregate.detail()))


def _spec(name: str, role: Role, environment: Environment) -> KeySpec:
    return KeySpec(name=name, scopes=role.scopes, environment=environment, role=role)

"""What one key may do to another: one rule for making a key and for every operation on
an existing one (read, rotate, revoke, retention override).

A key *reaches* a target key when the target lies within the key's own rights: no scope
the key lacks, an environment it administers, no later expiry (and none unbounded when
the key has one), addresses within its allow-list (and not unrestricted when the key has
one), and no wider job visibility. Making a key beyond reach, or rotating one (which
hands over its new secret), or revoking one, would let a key act with rights it does not
hold (issue 10: a ``keys:manage``-only key rotated an admin key and received its secret).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ocrvault.audit.events import Actor, AuditAction, AuditEvent, Outcome
from ocrvault.audit.log import AuditSink
from ocrvault.environments import Environment
from ocrvault.errors import AuthError, ErrorCode, ResourceError
from ocrvault.principal import JobVisibility, Principal, administered_by
from ocrvault.store.db import Transaction
from ocrvault.store.records import ApiKeyRecord
from ocrvault.store.repository import KeyRepository

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Verb = Literal["make", "manage"]


@dataclass(frozen=True, slots=True)
class Reach:
    """The rights a key holds, as far as holding another key is concerned."""

    scopes: frozenset[str]
    environment: Environment
    expires_at: datetime | None
    allowed_ips: tuple[Network, ...]
    job_visibility: JobVisibility

    @classmethod
    def of(cls, key: ApiKeyRecord) -> Reach:
        return cls(scopes=frozenset(key.scopes), environment=Environment(key.environment),
                   expires_at=key.expires_at,
                   allowed_ips=tuple(ipaddress.ip_network(c) for c in key.allowed_ips or ()),
                   job_visibility=JobVisibility(key.job_visibility))


@dataclass(frozen=True, slots=True)
class Overreach:
    code: ErrorCode
    detail: str


def _within(child: Network, parents: tuple[Network, ...]) -> bool:
    return any(child.version == parent.version and child.subnet_of(parent)  # type: ignore[arg-type]
               for parent in parents)


def beyond(holder: Reach, target: Reach, verb: Verb) -> Overreach | None:
    """Why a key with ``holder``'s rights may not ``verb`` a key with ``target``'s, or None."""
    missing = sorted(target.scopes - holder.scopes)
    if missing:
        return Overreach(ErrorCode.INSUFFICIENT_SCOPE,
                         f"A key cannot {verb} a key with scopes it lacks itself "
                         f"({', '.join(missing)}).")
    if target.environment not in administered_by(holder.environment):
        return Overreach(ErrorCode.FORBIDDEN, f"A test key cannot {verb} live keys.")
    if holder.expires_at is not None and (target.expires_at is None
                                          or target.expires_at > holder.expires_at):
        return Overreach(ErrorCode.FORBIDDEN,
                         f"A key cannot {verb} a key that outlives it; the other key needs an "
                         "expires_at no later than this key's own.")
    if holder.allowed_ips and not (
        target.allowed_ips and all(_within(net, holder.allowed_ips) for net in target.allowed_ips)
    ):
        return Overreach(ErrorCode.FORBIDDEN,
                         f"A key cannot {verb} a key usable from addresses it cannot use; the "
                         "other key needs allowed_ips within this key's own.")
    if not holder.job_visibility.allows(target.job_visibility):
        return Overreach(ErrorCode.FORBIDDEN,
                         f"A key that sees only its own jobs cannot {verb} a key that sees "
                         "every job of the tenant.")
    return None


def caller_key(session: Transaction, principal: Principal) -> ApiKeyRecord:
    """The caller's own key as stored now (its rights, not those it had at login)."""
    key = KeyRepository(session).for_tenant(principal.key_id, principal.tenant_id,
                                            [principal.environment.value])
    if key is None:
        raise AuthError(ErrorCode.FORBIDDEN, "The key making this request no longer exists.")
    return key


def managed_key(session: Transaction, principal: Principal, key_id: str,
                environments: tuple[Environment, ...], *, lock: bool = False) -> ApiKeyRecord:
    """The key ``key_id`` if the caller may act on it.

    A key the caller cannot see (another tenant's, or an environment it does not
    administer) is not found; one it can see, in its listing too, but that lies beyond
    its reach is forbidden, with the reason.
    """
    key = KeyRepository(session).for_tenant(key_id, principal.tenant_id,
                                            [e.value for e in environments], lock=lock)
    if key is None:
        raise ResourceError(ErrorCode.KEY_NOT_FOUND, f"No key {key_id[:40]!r} for this key.")
    overreach = beyond(Reach.of(caller_key(session, principal)), Reach.of(key), "manage")
    if overreach is not None:
        raise AuthError(ErrorCode.FORBIDDEN, overreach.detail)
    return key


@contextmanager
def refusals_audited(audit: AuditSink, principal: Principal,
                     target_id: str | None) -> Iterator[None]:
    """Record an authorization refusal of a known key (always: these are escalation
    attempts), in its own transaction since the one that refused rolls back."""
    try:
        yield
    except AuthError as error:
        audit.record(AuditEvent(AuditAction.AUTH_REFUSED, Actor.of(principal),
                                target_id=target_id, outcome=Outcome.FAILURE, reason=error.code))
        raise

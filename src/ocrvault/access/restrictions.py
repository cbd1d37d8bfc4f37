"""What a presented key must satisfy, as small classes with one check each.

In the manner of warehouse's macaroon caveats: every restriction in
:data:`RESTRICTIONS` must pass (all-of), the first refusal wins, and the evaluation
fails closed: a check that raises, a stored value it does not understand (an unknown
scope or environment, a malformed CIDR), or a missing client address where an
allow-list applies all refuse. Every 401 says the same thing, so the answer is no
oracle for which keys exist.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ocrvault.audit.events import AuditAction
from ocrvault.environments import Environment
from ocrvault.errors import ErrorCode
from ocrvault.principal import Scope
from ocrvault.store.records import ApiKeyRecord

log = logging.getLogger(__name__)

UNKNOWN_KEY = "The API key is unknown, revoked or expired."


@dataclass(frozen=True, slots=True)
class Attempt:
    """One presentation of a key: the stored key, which secret matched, and the request."""

    key: ApiKeyRecord
    previous_secret: bool
    environment: Environment
    scope: Scope
    client_ip: str | None
    now: datetime


@dataclass(frozen=True, slots=True)
class Refusal:
    code: ErrorCode
    detail: str
    action: AuditAction = AuditAction.AUTH_REFUSED


INVALID = Refusal(ErrorCode.UNAUTHORIZED, UNKNOWN_KEY)
EXPIRED = Refusal(ErrorCode.UNAUTHORIZED, UNKNOWN_KEY, AuditAction.KEY_EXPIRED_USED)


class Restriction(Protocol):
    def check(self, attempt: Attempt) -> Refusal | None: ...


class NotRevoked:
    def check(self, attempt: Attempt) -> Refusal | None:
        return INVALID if attempt.key.revoked_at is not None else None


class NotExpired:
    def check(self, attempt: Attempt) -> Refusal | None:
        expires = attempt.key.expires_at
        return EXPIRED if expires is not None and attempt.now >= expires else None


class PreviousSecretInGrace:
    """After a rotation the old secret works only until its grace period ends."""

    def check(self, attempt: Attempt) -> Refusal | None:
        if not attempt.previous_secret:
            return None
        until = attempt.key.previous_expires_at
        return EXPIRED if until is None or attempt.now >= until else None


class EnvironmentMatches:
    """The prefix of the presented key names the environment the key was made for."""

    def check(self, attempt: Attempt) -> Refusal | None:
        return None if attempt.key.environment == attempt.environment.value else INVALID


class KnownScopes:
    def check(self, attempt: Attempt) -> Refusal | None:
        known = set(Scope.__members__.values())
        return None if all(scope in known for scope in attempt.key.scopes) else INVALID


class IpAllowed:
    def check(self, attempt: Attempt) -> Refusal | None:
        allowed = attempt.key.allowed_ips
        if not allowed:
            return None
        refusal = Refusal(ErrorCode.IP_NOT_ALLOWED,
                          "This key may not be used from the address the request came from.")
        try:
            address = ipaddress.ip_address(attempt.client_ip or "")
        except ValueError:  # no address known (or not an IP): cannot be on the list
            return refusal
        if any(address in ipaddress.ip_network(cidr) for cidr in allowed):
            return None
        return refusal


class HasScope:
    def check(self, attempt: Attempt) -> Refusal | None:
        if attempt.scope.value in attempt.key.scopes:
            return None
        return Refusal(ErrorCode.INSUFFICIENT_SCOPE,
                       f"This key lacks the scope '{attempt.scope.value}' that this call needs.")


RESTRICTIONS: tuple[Restriction, ...] = (
    NotRevoked(), NotExpired(), PreviousSecretInGrace(), EnvironmentMatches(), KnownScopes(),
    IpAllowed(), HasScope(),
)


def evaluate(attempt: Attempt,
             restrictions: tuple[Restriction, ...] = RESTRICTIONS) -> Refusal | None:
    """The first refusal, or None when every restriction passes."""
    for restriction in restrictions:
        try:
            refusal = restriction.check(attempt)
        except Exception as error:  # fail closed: a check that cannot decide refuses
            log.warning("restriction %s failed (%s); refusing",
                        type(restriction).__name__, type(error).__name__)
            refusal = INVALID
        if refusal is not None:
            return refusal
    return None

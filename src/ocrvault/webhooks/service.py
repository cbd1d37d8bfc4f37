"""What a caller can do with webhook endpoints (scope ``webhooks:manage``).

An endpoint belongs to one tenant and one environment: a key manages only its own
tenant's endpoints in its own environment (a test key never reaches a live endpoint, nor
a live key a test one: events follow jobs, which are strictly per environment). An
endpoint hears of every job of its tenant and environment, so a key that sees only the
jobs it submitted (``job_visibility: own``) may not manage endpoints: it would learn of
its colleagues' jobs through them.

The signing secret is in the answer that makes or rotates it, and nowhere else. Every
change is an audit event; none of this sends anything from the request: ``/test`` and a
redeliver only queue work for the dispatcher.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditSink
from ocrvault.clock import Clock
from ocrvault.crypto import DekWrapper
from ocrvault.environments import Environment
from ocrvault.errors import AuthError, ErrorCode, InputRejected, ResourceError
from ocrvault.principal import JobVisibility, Principal
from ocrvault.store.commands import ChangeWebhookEndpoint, NewWebhookEndpoint, RotateWebhookSecret
from ocrvault.store.db import Database, Transaction
from ocrvault.store.records import WebhookAttemptRecord, WebhookEndpointRecord
from ocrvault.store.webhooks import WebhookRepository
from ocrvault.webhooks import signing
from ocrvault.webhooks.events import SUBSCRIBABLE, EventType, queue_message
from ocrvault.webhooks.secrets import seal_secret
from ocrvault.webhooks.ssrf import AddressGuard

ROTATION_GRACE = timedelta(hours=24)
MAX_ENDPOINTS = 100  # per tenant and environment: each event fans out to all of them
MAX_DESCRIPTION_CHARS = 500


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """What may be shown about an endpoint: never its secret."""

    id: str
    url: str
    events: tuple[str, ...]
    description: str | None
    environment: Environment
    status: str  # active, or failing after many failed attempts in a row
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None

    @classmethod
    def of(cls, endpoint: WebhookEndpointRecord, now: datetime) -> EndpointInfo:
        grace = endpoint.previous_expires_at
        return cls(id=endpoint.id, url=endpoint.url, events=endpoint.events,
                   description=endpoint.description, environment=endpoint.environment,
                   status=endpoint.status, consecutive_failures=endpoint.consecutive_failures,
                   created_at=endpoint.created_at, updated_at=endpoint.updated_at,
                   previous_secret_expires_at=grace if grace and grace > now else None)


@dataclass(frozen=True, slots=True)
class EndpointWithSecret:
    endpoint: EndpointInfo
    secret: str  # whsec_...: shown once


@dataclass(frozen=True, slots=True)
class EndpointChange:
    url: str | None = None
    events: tuple[str, ...] | None = None
    description: str | None = None


def normalized_url(url: str) -> str:
    """The URL as stored and compared (``callback_url``): scheme and host in lower case."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/",
                       parts.query, ""))


def _checked_events(events: tuple[str, ...]) -> tuple[str, ...]:
    known = {e.value for e in SUBSCRIBABLE}
    unknown = sorted(set(events) - known)
    if unknown or not events:
        raise InputRejected(ErrorCode.INVALID_PARAMETER,
                            f"events must name at least one of {', '.join(sorted(known))}"
                            + (f"; unknown: {', '.join(e[:40] for e in unknown[:5])}."
                               if unknown else "."))
    return tuple(sorted(set(events)))


def _checked_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION_CHARS:
        raise InputRejected(ErrorCode.INVALID_PARAMETER,
                            f"description is at most {MAX_DESCRIPTION_CHARS} characters.")
    return description


class WebhookService:
    def __init__(self, db: Database, keyring: DekWrapper, audit: AuditSink, clock: Clock,
                 guard: AddressGuard) -> None:
        self.db = db
        self.keyring = keyring
        self.audit = audit
        self.clock = clock
        self.guard = guard

    def create(self, principal: Principal, url: str, events: tuple[str, ...],
               description: str | None) -> EndpointWithSecret:
        self._may_manage(principal)
        url = self._checked_url(url)
        events, description = _checked_events(events), _checked_description(description)
        endpoint_id, secret, now = str(uuid.uuid4()), signing.new_secret(), self.clock()
        with self.db.transaction() as session:
            repository = WebhookRepository(session)
            if len(repository.endpoints_for(principal.tenant_id,
                                            principal.environment.value)) >= MAX_ENDPOINTS:
                raise InputRejected(ErrorCode.INVALID_PARAMETER,
                                    f"At most {MAX_ENDPOINTS} webhook endpoints per tenant "
                                    "and environment; delete one first.")
            endpoint = repository.add_endpoint(NewWebhookEndpoint(
                id=endpoint_id, tenant_id=principal.tenant_id,
                environment=principal.environment, url=url, events=events,
                description=description,
                sealed_secret=seal_secret(self.keyring, secret, principal.tenant_id,
                                          endpoint_id),
                created_at=now, created_by=principal.key_id))
            self._audit(principal, AuditAction.WEBHOOK_CHANGED, endpoint, "created", session)
        return EndpointWithSecret(EndpointInfo.of(endpoint, now), signing.encode_secret(secret))

    def endpoints(self, principal: Principal) -> list[EndpointInfo]:
        self._may_manage(principal)
        now = self.clock()
        with self.db.transaction() as session:
            endpoints = WebhookRepository(session).endpoints_for(principal.tenant_id,
                                                                 principal.environment.value)
        return [EndpointInfo.of(endpoint, now) for endpoint in endpoints]

    def get(self, principal: Principal, endpoint_id: str) -> EndpointInfo:
        with self.db.transaction() as session:
            return EndpointInfo.of(self._owned(session, principal, endpoint_id), self.clock())

    def update(self, principal: Principal, endpoint_id: str,
               change: EndpointChange) -> EndpointInfo:
        url = None if change.url is None else self._checked_url(change.url)
        events = None if change.events is None else _checked_events(change.events)
        description = _checked_description(change.description)
        now = self.clock()
        with self.db.transaction() as session:
            self._owned(session, principal, endpoint_id)
            endpoint = WebhookRepository(session).change_endpoint(ChangeWebhookEndpoint(
                endpoint_id, at=now, url=url, events=events, description=description))
            self._audit(principal, AuditAction.WEBHOOK_CHANGED, endpoint, "updated", session)
        return EndpointInfo.of(endpoint, now)

    def delete(self, principal: Principal, endpoint_id: str) -> None:
        with self.db.transaction() as session:
            endpoint = self._owned(session, principal, endpoint_id)
            WebhookRepository(session).delete_endpoint(endpoint_id)
            self._audit(principal, AuditAction.WEBHOOK_CHANGED, endpoint, "deleted", session)

    def rotate_secret(self, principal: Principal, endpoint_id: str) -> EndpointWithSecret:
        """A new secret; the current one keeps signing beside it for 24 hours (a previous
        one still in its grace period is dropped)."""
        secret, now = signing.new_secret(), self.clock()
        with self.db.transaction() as session:
            self._owned(session, principal, endpoint_id)
            endpoint = WebhookRepository(session).rotate_secret(RotateWebhookSecret(
                endpoint_id,
                sealed_secret=seal_secret(self.keyring, secret, principal.tenant_id,
                                          endpoint_id),
                previous_expires_at=now + ROTATION_GRACE, at=now))
            self._audit(principal, AuditAction.WEBHOOK_SECRET_ROTATED, endpoint, "rotated",
                        session)
        return EndpointWithSecret(EndpointInfo.of(endpoint, now), signing.encode_secret(secret))

    def test(self, principal: Principal, endpoint_id: str) -> str:
        """Queue a ``webhook.test`` event for this endpoint alone; its message id."""
        now = self.clock()
        with self.db.transaction() as session:
            endpoint = self._owned(session, principal, endpoint_id)
            return queue_message(session, tenant_id=endpoint.tenant_id,
                                 environment=endpoint.environment,
                                 event=EventType.WEBHOOK_TEST, at=now,
                                 data={"endpoint_id": endpoint.id,
                                       "tenant": endpoint.tenant_id},
                                 endpoint_ids=(endpoint.id,))

    def deliveries(self, principal: Principal, endpoint_id: str,
                   limit: int) -> list[WebhookAttemptRecord]:
        """The endpoint's delivery log (one line per attempt), newest first."""
        with self.db.transaction() as session:
            self._owned(session, principal, endpoint_id)
            return WebhookRepository(session).attempts_for(endpoint_id, limit)

    def redeliver(self, principal: Principal, endpoint_id: str, delivery_id: str) -> None:
        """Send a finished delivery again (same ``webhook-id`` and body), soon."""
        with self.db.transaction() as session:
            endpoint = self._owned(session, principal, endpoint_id)
            repository = WebhookRepository(session)
            if not repository.has_delivery(endpoint_id, delivery_id):
                raise ResourceError(ErrorCode.WEBHOOK_DELIVERY_NOT_FOUND,
                                    f"No delivery {delivery_id[:40]!r} of this endpoint.")
            # A pending one is already due or waiting for its retry: nothing to change.
            if repository.redeliver(endpoint_id, delivery_id, self.clock()):
                self._audit(principal, AuditAction.WEBHOOK_CHANGED, endpoint, "redelivered",
                            session, delivery_id)

    def callback_endpoint(self, principal: Principal, url: str) -> str:
        """The caller's endpoint registered at ``url`` (a ``callback_url``), by id."""
        wanted = normalized_url(url)
        with self.db.transaction() as session:
            endpoints = WebhookRepository(session).endpoints_for(principal.tenant_id,
                                                                 principal.environment.value)
        for endpoint in endpoints:
            if endpoint.url == wanted:
                return endpoint.id
        raise InputRejected(ErrorCode.CALLBACK_URL_NOT_REGISTERED,
                            "callback_url must be the URL of one of this tenant's webhook "
                            "endpoints in this environment; register it with POST /v1/webhooks.")

    # -- helpers --------------------------------------------------------------------------

    def _checked_url(self, url: str) -> str:
        normalized = normalized_url(url)
        self.guard.check(normalized)
        return normalized

    @staticmethod
    def _may_manage(principal: Principal) -> None:
        if principal.job_visibility is JobVisibility.OWN:
            raise AuthError(ErrorCode.FORBIDDEN,
                            "A key that sees only its own jobs cannot manage webhooks, which "
                            "report every job of the tenant.")

    def _owned(self, session: Transaction, principal: Principal,
               endpoint_id: str) -> WebhookEndpointRecord:
        self._may_manage(principal)
        endpoint = WebhookRepository(session).endpoint_for(endpoint_id, principal.tenant_id,
                                                           principal.environment.value)
        if endpoint is None:
            raise ResourceError(ErrorCode.WEBHOOK_NOT_FOUND,
                                f"No webhook endpoint {endpoint_id[:40]!r} for this key.")
        return endpoint

    def _audit(self, principal: Principal, action: AuditAction,
               endpoint: WebhookEndpointRecord, change: str, session: Transaction,
               delivery_id: str | None = None) -> None:
        # The host only: a URL's path or query may carry the receiver's own token.
        detail: dict[str, object] = {"change": change, "host": urlsplit(endpoint.url).hostname,
                                     "events": list(endpoint.events)}
        if delivery_id is not None:
            detail["delivery_id"] = delivery_id
        self.audit.record(AuditEvent(action, Actor.of(principal), target_id=endpoint.id,
                                     detail=detail), session)

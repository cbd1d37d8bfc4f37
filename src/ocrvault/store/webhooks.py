"""Webhook endpoints, the outbox of their events, and the delivery log.

Reads return frozen records, writes take commands, as in repository.py. Every read of an
endpoint for a caller takes the caller's tenant and environment, so another's endpoint
is simply not found.

The outbox is claimed under a lease: :meth:`WebhookRepository.claim` is one conditional
UPDATE (the delivery is pending, due, and nobody's lease runs), atomic on SQLite and
PostgreSQL alike, so of several dispatchers racing for one delivery exactly one wins;
:meth:`WebhookRepository.record_attempt` writes the outcome only while the lease is still
the writer's, so a dispatcher that overran its lease cannot overwrite its successor's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session

from ocrvault.store.commands import (
    AttemptOutcome,
    ChangeWebhookEndpoint,
    NewWebhookEndpoint,
    NewWebhookMessage,
    RotateWebhookSecret,
)
from ocrvault.store.records import ClaimedDelivery, WebhookAttemptRecord, WebhookEndpointRecord
from ocrvault.store.tables import (
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WebhookJobTargetRow,
    WebhookMessageRow,
)

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
ACTIVE, FAILING = "active", "failing"


class WebhookRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- endpoints ------------------------------------------------------------------------

    def add_endpoint(self, command: NewWebhookEndpoint) -> WebhookEndpointRecord:
        row = WebhookEndpointRow(
            id=command.id, tenant_id=command.tenant_id,
            environment=command.environment.value, url=command.url,
            events=list(command.events), description=command.description,
            sealed_secret=command.sealed_secret, status=ACTIVE, consecutive_failures=0,
            created_at=command.created_at, created_by=command.created_by,
            updated_at=command.created_at,
        )
        self.session.add(row)
        self.session.flush()
        return WebhookEndpointRecord.of(row)

    def _owned_row(self, endpoint_id: str, tenant_id: str,
                   environment: str) -> WebhookEndpointRow | None:
        return self.session.scalar(select(WebhookEndpointRow).where(
            WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.tenant_id == tenant_id,
            WebhookEndpointRow.environment == environment))

    def endpoint_for(self, endpoint_id: str, tenant_id: str,
                     environment: str) -> WebhookEndpointRecord | None:
        row = self._owned_row(endpoint_id, tenant_id, environment)
        return None if row is None else WebhookEndpointRecord.of(row)

    def endpoints_for(self, tenant_id: str, environment: str) -> list[WebhookEndpointRecord]:
        return [WebhookEndpointRecord.of(row) for row in self.session.scalars(
            select(WebhookEndpointRow)
            .where(WebhookEndpointRow.tenant_id == tenant_id,
                   WebhookEndpointRow.environment == environment)
            .order_by(WebhookEndpointRow.created_at, WebhookEndpointRow.id))]

    def _row(self, endpoint_id: str) -> WebhookEndpointRow:
        row = self.session.get(WebhookEndpointRow, endpoint_id)
        if row is None:
            raise LookupError(f"no webhook endpoint {endpoint_id!r}")
        return row

    def change_endpoint(self, command: ChangeWebhookEndpoint) -> WebhookEndpointRecord:
        row = self._row(command.endpoint_id)
        if command.url is not None:
            row.url, row.status, row.consecutive_failures = command.url, ACTIVE, 0
        if command.events is not None:
            row.events = list(command.events)
        if command.description is not None:
            row.description = command.description
        row.updated_at = command.at
        self.session.flush()
        return WebhookEndpointRecord.of(row)

    def rotate_secret(self, command: RotateWebhookSecret) -> WebhookEndpointRecord:
        row = self._row(command.endpoint_id)
        row.previous_sealed_secret, row.sealed_secret = row.sealed_secret, command.sealed_secret
        row.previous_expires_at = command.previous_expires_at
        row.updated_at = command.at
        self.session.flush()
        return WebhookEndpointRecord.of(row)

    def all_endpoints(self) -> list[WebhookEndpointRecord]:
        """Every tenant's endpoints: for re-sealing secrets under a new master key only."""
        return [WebhookEndpointRecord.of(row) for row in
                self.session.scalars(select(WebhookEndpointRow).order_by(WebhookEndpointRow.id))]

    def reseal(self, endpoint_id: str, sealed: bytes, previous: bytes | None) -> None:
        """Store the endpoint's secrets sealed anew (the same secrets, another master key)."""
        row = self._row(endpoint_id)
        row.sealed_secret, row.previous_sealed_secret = sealed, previous

    def delete_endpoint(self, endpoint_id: str) -> None:
        """The endpoint and its deliveries and log (the messages stay for other endpoints)."""
        deliveries = select(WebhookDeliveryRow.id).where(
            WebhookDeliveryRow.endpoint_id == endpoint_id)
        # Explicit, not by ON DELETE CASCADE alone: SQLite enforces it only with its pragma.
        self.session.execute(delete(WebhookAttemptRow)
                             .where(WebhookAttemptRow.delivery_id.in_(deliveries)))
        self.session.execute(delete(WebhookDeliveryRow)
                             .where(WebhookDeliveryRow.endpoint_id == endpoint_id))
        self.session.execute(delete(WebhookEndpointRow)
                             .where(WebhookEndpointRow.id == endpoint_id))

    # -- the outbox -----------------------------------------------------------------------

    def bind_job(self, job_id: str, endpoint_id: str) -> None:
        """Send ``job_id``'s events to ``endpoint_id`` only (a ``callback_url``)."""
        self.session.add(WebhookJobTargetRow(job_id=job_id, endpoint_id=endpoint_id))
        self.session.flush()

    def job_target(self, job_id: str) -> str | None:
        row = self.session.get(WebhookJobTargetRow, job_id)
        return None if row is None else row.endpoint_id

    def add_message(self, command: NewWebhookMessage) -> None:
        """The event and one pending delivery per endpoint, due now, in the caller's
        transaction."""
        self.session.add(WebhookMessageRow(
            id=command.id, tenant_id=command.tenant_id,
            environment=command.environment.value, type=command.type, job_id=command.job_id,
            body=command.body, created_at=command.created_at))
        self.session.flush()  # the deliveries refer to it
        for endpoint_id in command.endpoint_ids:
            self.session.add(WebhookDeliveryRow(
                id=delivery_id_of(command.id, endpoint_id), message_id=command.id,
                endpoint_id=endpoint_id, state=PENDING, attempts=0,
                next_attempt_at=command.created_at, created_at=command.created_at))
        self.session.flush()

    def due_ids(self, now: datetime, limit: int) -> Sequence[str]:
        """Pending deliveries that are due and not under a running lease, oldest due first."""
        return self.session.scalars(
            select(WebhookDeliveryRow.id)
            .where(WebhookDeliveryRow.state == PENDING, WebhookDeliveryRow.next_attempt_at <= now,
                   or_(WebhookDeliveryRow.lease_expires_at.is_(None),
                       WebhookDeliveryRow.lease_expires_at <= now))
            .order_by(WebhookDeliveryRow.next_attempt_at).limit(limit)
        ).all()

    def claim(self, delivery_id: str, owner: str, now: datetime,
              lease: timedelta) -> ClaimedDelivery | None:
        """Take the lease on one due delivery and count the attempt; None if another
        dispatcher has it (or it is no longer due)."""
        result = self.session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id == delivery_id, WebhookDeliveryRow.state == PENDING,
                   WebhookDeliveryRow.next_attempt_at <= now,
                   or_(WebhookDeliveryRow.lease_expires_at.is_(None),
                       WebhookDeliveryRow.lease_expires_at <= now))
            .values(lease_owner=owner, lease_expires_at=now + lease,
                    attempts=WebhookDeliveryRow.attempts + 1)
            .execution_options(synchronize_session=False))
        if getattr(result, "rowcount", 0) != 1:
            return None
        found = self.session.execute(
            select(WebhookDeliveryRow.attempts, WebhookMessageRow, WebhookEndpointRow)
            .join(WebhookMessageRow, WebhookMessageRow.id == WebhookDeliveryRow.message_id)
            .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
            .where(WebhookDeliveryRow.id == delivery_id)).one()
        attempts, message, endpoint = found
        return ClaimedDelivery(id=delivery_id, attempt=attempts, message_id=message.id,
                               event_type=message.type, body=message.body,
                               endpoint=WebhookEndpointRecord.of(endpoint))

    def record_attempt(self, outcome: AttemptOutcome) -> bool:
        """Log the attempt and settle the delivery, if the lease is still ``owner``'s;
        count the endpoint's failures in a row (failing from ``failing_after`` on)."""
        state = (SUCCEEDED if outcome.succeeded
                 else PENDING if outcome.retry_at is not None else FAILED)
        settled = self.session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id == outcome.delivery_id,
                   WebhookDeliveryRow.lease_owner == outcome.owner,
                   WebhookDeliveryRow.attempts == outcome.attempt)
            .values(state=state, lease_owner=None, lease_expires_at=None,
                    next_attempt_at=outcome.retry_at or outcome.at,
                    finished_at=None if state == PENDING else outcome.at)
            .execution_options(synchronize_session=False))
        if getattr(settled, "rowcount", 0) != 1:
            return False
        self.session.add(WebhookAttemptRow(
            delivery_id=outcome.delivery_id, endpoint_id=outcome.endpoint_id,
            message_id=outcome.message_id, event_type=outcome.event_type,
            attempt=outcome.attempt, at=outcome.at, status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            outcome=SUCCEEDED if outcome.succeeded else FAILED, error=outcome.error))
        # One UPDATE each: dispatchers settling attempts of one endpoint at once all count.
        failures = WebhookEndpointRow.consecutive_failures + 1
        counted = ({"consecutive_failures": 0, "status": ACTIVE} if outcome.succeeded else
                   {"consecutive_failures": failures,
                    "status": case((failures >= outcome.failing_after, FAILING),
                                   else_=WebhookEndpointRow.status)})
        self.session.execute(
            update(WebhookEndpointRow).where(WebhookEndpointRow.id == outcome.endpoint_id)
            .values(**counted).execution_options(synchronize_session=False))
        self.session.flush()
        return True

    def redeliver(self, endpoint_id: str, delivery_id: str, now: datetime) -> bool:
        """Make a finished delivery of ``endpoint_id`` pending again, due now (a manual
        redeliver); False if there is no such delivery or it is still pending."""
        result = self.session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id == delivery_id,
                   WebhookDeliveryRow.endpoint_id == endpoint_id,
                   WebhookDeliveryRow.state != PENDING)
            .values(state=PENDING, next_attempt_at=now, finished_at=None)
            .execution_options(synchronize_session=False))
        return bool(getattr(result, "rowcount", 0) == 1)

    def has_delivery(self, endpoint_id: str, delivery_id: str) -> bool:
        return self.session.scalar(select(WebhookDeliveryRow.id).where(
            WebhookDeliveryRow.id == delivery_id,
            WebhookDeliveryRow.endpoint_id == endpoint_id)) is not None

    def attempts_for(self, endpoint_id: str, limit: int) -> list[WebhookAttemptRecord]:
        """The endpoint's delivery log, newest first."""
        return [WebhookAttemptRecord.of(row) for row in self.session.scalars(
            select(WebhookAttemptRow).where(WebhookAttemptRow.endpoint_id == endpoint_id)
            .order_by(WebhookAttemptRow.at.desc(), WebhookAttemptRow.id.desc()).limit(limit))]

    def purge_finished(self, before: datetime) -> int:
        """Forget deliveries finished before ``before``, their log, and messages left with
        no delivery; how many deliveries."""
        old = select(WebhookDeliveryRow.id).where(WebhookDeliveryRow.state != PENDING,
                                                  WebhookDeliveryRow.finished_at < before)
        self.session.execute(delete(WebhookAttemptRow)
                             .where(WebhookAttemptRow.delivery_id.in_(old)))
        gone = self.session.execute(delete(WebhookDeliveryRow).where(
            WebhookDeliveryRow.state != PENDING, WebhookDeliveryRow.finished_at < before))
        self.session.execute(delete(WebhookMessageRow).where(
            WebhookMessageRow.created_at < before,
            ~WebhookMessageRow.id.in_(select(WebhookDeliveryRow.message_id))))
        return int(getattr(gone, "rowcount", 0))


def delivery_id_of(message_id: str, endpoint_id: str) -> str:
    """Deterministic, so one message reaches one endpoint through one delivery only."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ocrvault:webhook:{message_id}:{endpoint_id}"))

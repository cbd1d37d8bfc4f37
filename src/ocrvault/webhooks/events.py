"""What a webhook says, and the outbox write that queues it.

A payload is ``{"type", "timestamp", "data": {"job_id", "status", "tenant"}}``: ids and a
status, nothing from the document (no text, no file name, no page image). The receiver
fetches the result with its own key.

:func:`queue_job_event` is the one call a change to a job makes, inside the transaction
that changes it: the event rows commit with the change or not at all, so a crash loses no
event, and a change that rolled back sends none. The dispatcher delivers them later.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from ocrvault.environments import Environment
from ocrvault.store.commands import NewWebhookMessage
from ocrvault.store.db import Transaction
from ocrvault.store.records import JobRecord
from ocrvault.store.webhooks import WebhookRepository


class EventType(StrEnum):
    JOB_SUCCEEDED = "job.succeeded"
    JOB_FAILED = "job.failed"
    JOB_DELETED = "job.deleted"  # by a caller
    JOB_EXPIRED = "job.expired"  # its result removed by retention
    WEBHOOK_TEST = "webhook.test"  # POST /v1/webhooks/{id}/test; to that endpoint only


SUBSCRIBABLE = (EventType.JOB_SUCCEEDED, EventType.JOB_FAILED, EventType.JOB_DELETED,
                EventType.JOB_EXPIRED)


def new_message_id() -> str:
    """A ``webhook-id``: unique per event, the same on every attempt (receivers dedupe)."""
    return f"msg_{uuid.uuid4().hex}"


def body_of(event: EventType, at: datetime, data: dict[str, Any]) -> str:
    """The JSON body, compact and with sorted keys: the bytes signed and sent."""
    return json.dumps({"type": event.value, "timestamp": at.isoformat().replace("+00:00", "Z"),
                       "data": data}, sort_keys=True, separators=(",", ":"))


def queue_message(session: Transaction, *, tenant_id: str, environment: Environment,
                  event: EventType, at: datetime, data: dict[str, Any],
                  endpoint_ids: tuple[str, ...], job_id: str | None = None) -> str:
    """Write one event for ``endpoint_ids`` to the outbox in ``session``; its id."""
    message_id = new_message_id()
    WebhookRepository(session).add_message(NewWebhookMessage(
        id=message_id, tenant_id=tenant_id, environment=environment, type=event.value,
        job_id=job_id, body=body_of(event, at, data), created_at=at,
        endpoint_ids=endpoint_ids))
    return message_id


def queue_job_event(session: Transaction, job: JobRecord, event: EventType, status: str,
                    at: datetime) -> None:
    """Queue ``event`` about ``job`` for the endpoints of its tenant and environment that
    subscribe to it (or, for a job submitted with ``callback_url``, that endpoint only),
    inside the caller's transaction."""
    repository = WebhookRepository(session)
    target = repository.job_target(job.id)
    endpoint_ids = tuple(
        endpoint.id for endpoint in repository.endpoints_for(job.tenant_id, job.environment.value)
        if event.value in endpoint.events and target in (None, endpoint.id))
    if endpoint_ids:
        queue_message(session, tenant_id=job.tenant_id, environment=job.environment,
                      event=event, at=at, endpoint_ids=endpoint_ids, job_id=job.id,
                      data={"job_id": job.id, "status": status, "tenant": job.tenant_id})

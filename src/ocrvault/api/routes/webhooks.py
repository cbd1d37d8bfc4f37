"""Webhook endpoints: register, read, change, delete, rotate the secret, test, and the
delivery log with a manual redeliver (scope ``webhooks:manage``).

A key reaches only its own tenant's endpoints in its own environment; another's id is
``404 webhook_not_found``. Nothing here sends a webhook: ``/test`` and a redeliver queue
work for the dispatcher and answer ``202`` at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from ocrvault.api.deps import AuthFirstRoute, WebhookServiceDep, require_scope
from ocrvault.api.schemas import problems
from ocrvault.principal import Principal, Scope
from ocrvault.webhooks.events import EventType
from ocrvault.webhooks.service import (
    MAX_DESCRIPTION_CHARS,
    EndpointChange,
    EndpointInfo,
    EndpointWithSecret,
)
from ocrvault.webhooks.ssrf import MAX_URL_CHARS

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=AuthFirstRoute)

Manager = Annotated[Principal, Depends(require_scope(Scope.WEBHOOKS_MANAGE))]
JobEvent = Annotated[str, Field(max_length=32, examples=[EventType.JOB_SUCCEEDED.value])]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=MAX_URL_CHARS, description="An https URL at a public address")
    events: list[JobEvent] = Field(
        min_length=1, max_length=8,
        description="Any of job.succeeded, job.failed, job.deleted, job.expired")
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=MAX_URL_CHARS)
    events: list[JobEvent] | None = Field(default=None, min_length=1, max_length=8)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)


@dataclass(frozen=True, slots=True)
class WebhookCreated(EndpointInfo):
    """An endpoint right after it was made or its secret rotated: the only answer that
    holds the secret (``whsec_`` + base64); ocrvault keeps it sealed only."""

    secret: str

    @classmethod
    def made(cls, made: EndpointWithSecret) -> WebhookCreated:
        return cls(**asdict(made.endpoint), secret=made.secret)


class WebhookList(BaseModel):
    webhooks: list[EndpointInfo]


class Delivery(BaseModel):
    """One attempt: never the response body."""

    delivery_id: str = Field(description="Pass to .../deliveries/{delivery_id}/redeliver")
    message_id: str = Field(description="The webhook-id header: the same on every attempt")
    event: str
    attempt: int
    at: datetime
    status_code: int | None = Field(description="The receiver's; null if none came")
    latency_ms: int | None
    outcome: str = Field(description="succeeded or failed")
    error: str | None = Field(description="Why it failed: http_status, timeout, "
                              "connect_failed, webhook_url_refused, ...")


class DeliveryLog(BaseModel):
    deliveries: list[Delivery] = Field(description="Newest first")


class Queued(BaseModel):
    message_id: str | None = Field(default=None, description="The webhook-id it will carry")


@router.post("", status_code=201, response_model=WebhookCreated,
             responses=problems(400, 401, 403, 429),
             summary="Register an endpoint; its signing secret is in this answer only")
def create_webhook(body: WebhookCreate, webhooks: WebhookServiceDep,
                   caller: Manager) -> WebhookCreated:
    return WebhookCreated.made(webhooks.create(caller, body.url, tuple(body.events),
                                             body.description))


@router.get("", response_model=WebhookList, responses=problems(400, 401, 403, 429),
            summary="The endpoints of this key's tenant and environment; never a secret")
def list_webhooks(webhooks: WebhookServiceDep, caller: Manager) -> WebhookList:
    return WebhookList(webhooks=webhooks.endpoints(caller))


@router.get("/{webhook_id}", response_model=EndpointInfo,
            responses=problems(400, 401, 403, 404, 429), summary="One endpoint; never its secret")
def get_webhook(webhook_id: str, webhooks: WebhookServiceDep, caller: Manager) -> EndpointInfo:
    return webhooks.get(caller, webhook_id)


@router.patch("/{webhook_id}", response_model=EndpointInfo,
              responses=problems(400, 401, 403, 404, 429),
              summary="Change an endpoint's url, events or description")
def update_webhook(webhook_id: str, body: WebhookUpdate, webhooks: WebhookServiceDep,
                   caller: Manager) -> EndpointInfo:
    change = EndpointChange(url=body.url, description=body.description,
                            events=None if body.events is None else tuple(body.events))
    return webhooks.update(caller, webhook_id, change)


@router.delete("/{webhook_id}", status_code=204, response_class=Response,
               responses=problems(400, 401, 403, 404, 429),
               summary="Delete an endpoint; what was queued for it is dropped")
def delete_webhook(webhook_id: str, webhooks: WebhookServiceDep, caller: Manager) -> Response:
    webhooks.delete(caller, webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookCreated,
             responses=problems(400, 401, 403, 404, 429),
             summary="A new signing secret; the current one keeps signing beside it for 24 h")
def rotate_webhook_secret(webhook_id: str, webhooks: WebhookServiceDep,
                          caller: Manager) -> WebhookCreated:
    return WebhookCreated.made(webhooks.rotate_secret(caller, webhook_id))


@router.post("/{webhook_id}/test", status_code=202, response_model=Queued,
             responses=problems(400, 401, 403, 404, 429),
             summary="Queue a webhook.test event for this endpoint")
def test_webhook(webhook_id: str, webhooks: WebhookServiceDep, caller: Manager) -> Queued:
    return Queued(message_id=webhooks.test(caller, webhook_id))


@router.get("/{webhook_id}/deliveries", response_model=DeliveryLog,
            responses=problems(400, 401, 403, 404, 429),
            summary="The delivery log: time, event, status code, latency, attempt")
def list_deliveries(webhook_id: str, webhooks: WebhookServiceDep, caller: Manager,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100) -> DeliveryLog:
    return DeliveryLog(deliveries=[
        Delivery(delivery_id=a.delivery_id, message_id=a.message_id, event=a.event_type,
                 attempt=a.attempt, at=a.at, status_code=a.status_code,
                 latency_ms=a.latency_ms, outcome=a.outcome, error=a.error)
        for a in webhooks.deliveries(caller, webhook_id, limit)])


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202,
             response_model=Queued, responses=problems(400, 401, 403, 404, 429),
             summary="Send a delivery again (same webhook-id and body)")
def redeliver(webhook_id: str, delivery_id: str, webhooks: WebhookServiceDep,
              caller: Manager) -> Queued:
    webhooks.redeliver(caller, webhook_id, delivery_id)
    return Queued()

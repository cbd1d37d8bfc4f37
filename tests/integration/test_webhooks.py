"""Signed webhooks from the outbox, end to end: the API registers endpoints, jobs and the
reaper write events in their own transactions, the dispatcher sends them to a real HTTP
receiver on 127.0.0.1, and every delivery is checked with the ``standardwebhooks`` package
from PyPI, unmodified.

The test config allows plain HTTP and 127.0.0.1 (OCRVAULT_WEBHOOK_ALLOW_HTTP,
OCRVAULT_WEBHOOK_ALLOW_CIDRS), the only ways past the SSRF guard. The dispatcher is run by
hand (``run_once``) and time moves on a fake clock: no sleeps.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from fastapi.testclient import TestClient
from standardwebhooks import Webhook, WebhookVerificationError

from ocrvault.audit import AuditAction, AuditQuery
from ocrvault.client import SeenIds, verify_webhook
from ocrvault.client import WebhookVerificationError as SdkRefusal
from ocrvault.clock import utcnow
from ocrvault.compose.parts import Foundation
from ocrvault.compose.scheduler import SchedulerNode
from ocrvault.config import Settings
from ocrvault.environments import Environment
from ocrvault.principal import Principal, RequestContext, Role, Scope
from ocrvault.webhooks.delivery import Sender
from ocrvault.webhooks.dispatcher import Dispatcher
from ocrvault.webhooks.secrets import count_sealed_under, reseal_all
from ocrvault.webhooks.ssrf import AddressGuard, guard_for
from tests.clocks import FakeClock
from tests.conftest import assert_problem, auth, issue, runtime_of, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import canary, encode, text_page
from tests.engine_fakes import FixedEngine
from tests.webhook_receiver import Received, receiving

PNG = encode(text_page(["webhook"]), "PNG")
JOB_EVENTS = ["job.succeeded", "job.failed", "job.deleted", "job.expired"]


def webhook_settings(databases: TestDatabases, tmp_path: Path) -> Settings:
    return databases.settings(tmp_path / "data", workers=1, reaper_interval_seconds=3600,
                              webhook_allow_http=True, webhook_allow_cidrs="127.0.0.1/32")


@pytest.fixture
def clock() -> FakeClock:
    # Near the real time: the receiver's verifier judges timestamps by its own clock.
    return FakeClock(utcnow())


@pytest.fixture
def app(databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path,
        clock: FakeClock) -> TestClient:
    return make_client(webhook_settings(databases, tmp_path), engine=FixedEngine(), clock=clock)


@pytest.fixture
def key(app: TestClient) -> str:
    return issue(app, "acme")


def dispatcher_of(app: TestClient) -> Dispatcher:
    dispatcher = runtime_of(app).dispatcher
    assert dispatcher is not None
    return dispatcher


def register(app: TestClient, key: str, url: str, events: list[str] | None = None,
             status: int = 201) -> dict[str, Any]:
    response = app.post("/v1/webhooks", headers=auth(key),
                        json={"url": url, "events": events or JOB_EVENTS, "description": "t"})
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def event_of(delivery: Received) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(delivery.body)
    return event


def deliveries_of(app: TestClient, key: str, webhook_id: str) -> list[dict[str, Any]]:
    response = app.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=auth(key))
    assert response.status_code == 200, response.text
    log: list[dict[str, Any]] = response.json()["deliveries"]
    return log


def submit(app: TestClient, key: str, content: bytes = PNG, **params: str) -> str:
    response = app.post("/v1/read", headers=auth(key), content=content, params=params)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    wait_for_job(app, job_id, key)
    return job_id


def test_job_events_reach_the_receiver_signed_per_standard_webhooks_without_content(
        databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    # Real OCR on a page holding a canary: the receiver must never see its text.
    app = make_client(webhook_settings(databases, tmp_path))
    key = issue(app, "acme")
    planted = canary()
    document = encode(text_page([planted]), "PNG")
    with receiving() as receiver:
        made = register(app, key, receiver.url())
        assert made["secret"].startswith("whsec_") and len(made["secret"]) == 6 + 44
        job_id = submit(app, key, document)
        assert planted.split()[1] in app.get(f"/v1/jobs/{job_id}", headers=auth(key)).text
        assert app.delete(f"/v1/jobs/{job_id}", headers=auth(key)).status_code == 200
        assert dispatcher_of(app).run_once() == 2

    # Sent side by side, so in any order; the payload's timestamp orders them.
    received = sorted(receiver.received, key=lambda d: event_of(d)["timestamp"])
    assert [event_of(d)["type"] for d in received] == ["job.succeeded", "job.deleted"]
    tenant = login(app, key).tenant_id
    for delivery in received:
        assert delivery.verifies_with(made["secret"])
        event = event_of(delivery)
        assert set(event) == {"type", "timestamp", "data"}
        assert event["data"] == {"job_id": job_id, "tenant": tenant,
                                 "status": event["type"].removeprefix("job.")}
        for word in planted.split()[1:]:
            assert word not in delivery.body.decode()
        assert delivery.headers["content-type"] == "application/json"
    assert receiver.received[0].headers["webhook-id"] != receiver.received[1].headers["webhook-id"]


def login(app: TestClient, key: str) -> Principal:
    return runtime_of(app).access.authenticate(key, RequestContext("test"), Scope.AUDIT_READ)


def test_an_altered_delivery_and_one_older_than_five_minutes_fail_verification(
        databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    clock = FakeClock(utcnow() - timedelta(minutes=6))  # the sender's clock 6 minutes behind
    app = make_client(webhook_settings(databases, tmp_path), engine=FixedEngine(), clock=clock)
    key = issue(app, "acme")
    with receiving() as receiver:
        made = register(app, key, receiver.url())
        app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        assert dispatcher_of(app).run_once() == 1
        clock.now = utcnow()
        app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        assert dispatcher_of(app).run_once() == 1
    old, fresh = receiver.received
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(made["secret"]).verify(old.body, old.headers)
    # Sent now: valid as sent, invalid with one byte of its body or its id changed.
    assert fresh.verifies_with(made["secret"])
    altered = fresh.body.replace(b"webhook.test", b"webhook.tesT")
    with pytest.raises(WebhookVerificationError):
        Webhook(made["secret"]).verify(altered, fresh.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(made["secret"]).verify(fresh.body, {**fresh.headers, "webhook-id": "msg_x"})


def test_an_exact_replay_inside_the_window_is_refused_by_the_sdk_helper(
        app: TestClient, key: str) -> None:
    with receiving() as receiver:
        made = register(app, key, receiver.url())
        app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        dispatcher_of(app).run_once()
    delivery = receiver.received[0]
    # The Standard Webhooks verifier alone accepts the same delivery twice ...
    assert delivery.verifies_with(made["secret"]) and delivery.verifies_with(made["secret"])
    # ... the SDK's helper remembers the webhook-id for the window.
    seen = SeenIds()
    event = verify_webhook(delivery.body, delivery.headers, made["secret"], seen=seen)
    assert event["type"] == "webhook.test"
    with pytest.raises(SdkRefusal, match="replay"):
        verify_webhook(delivery.body, delivery.headers, made["secret"], seen=seen)


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt_after_backoff(
        app: TestClient, key: str, clock: FakeClock) -> None:
    with receiving(answers=[500, 503]) as receiver:
        made = register(app, key, receiver.url())
        assert app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key)).status_code == 202
        dispatcher = dispatcher_of(app)
        assert dispatcher.run_once() == 1
        assert dispatcher.run_once() == 0  # not due yet: the first wait is about 5 s
        clock.advance(timedelta(seconds=7))
        assert dispatcher.run_once() == 1
        clock.advance(timedelta(seconds=20))
        assert dispatcher.run_once() == 0  # the second wait is about 30 s
        clock.advance(timedelta(seconds=20))
        assert dispatcher.run_once() == 1
        clock.advance(timedelta(hours=7))
        assert dispatcher.run_once() == 0  # delivered: nothing more to send

    assert len(receiver.received) == 3
    assert len({d.headers["webhook-id"] for d in receiver.received}) == 1  # one message
    assert len({d.body for d in receiver.received}) == 1
    assert all(d.verifies_with(made["secret"]) for d in receiver.received)
    log = deliveries_of(app, key, made["id"])
    assert [(e["attempt"], e["status_code"], e["outcome"]) for e in reversed(log)] == [
        (1, 500, "failed"), (2, 503, "failed"), (3, 200, "succeeded")]
    assert all(e["event"] == "webhook.test" and e["latency_ms"] is not None for e in log)
    # No response body is kept: the log has no field for one.
    assert set(log[0]) == {"delivery_id", "message_id", "event", "attempt", "at",
                           "status_code", "latency_ms", "outcome", "error"}


def test_a_delivery_is_given_up_after_the_schedule_and_can_be_redelivered_by_hand(
        app: TestClient, key: str, clock: FakeClock) -> None:
    with receiving(answers=[500] * 7) as receiver:
        made = register(app, key, receiver.url())
        app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        dispatcher = dispatcher_of(app)
        attempts = 0
        for _ in range(10):
            attempts += dispatcher.run_once()
            clock.advance(timedelta(hours=8))
        assert attempts == 7
        endpoint = app.get(f"/v1/webhooks/{made['id']}", headers=auth(key)).json()
        assert (endpoint["consecutive_failures"], endpoint["status"]) == (7, "active")
        delivery_id = deliveries_of(app, key, made["id"])[0]["delivery_id"]
        again = app.post(f"/v1/webhooks/{made['id']}/deliveries/{delivery_id}/redeliver",
                         headers=auth(key))
        assert again.status_code == 202 and len(receiver.received) == 7  # queued, not sent
        assert dispatcher.run_once() == 1
    assert len(receiver.received) == 8
    last = receiver.received[-1]  # signed at the fake clock's time, 80 hours on
    verify_webhook(last.body, last.headers, made["secret"], seen=SeenIds(),
                   now=clock.now.timestamp)
    assert deliveries_of(app, key, made["id"])[0]["outcome"] == "succeeded"
    endpoint = app.get(f"/v1/webhooks/{made['id']}", headers=auth(key)).json()
    assert endpoint["consecutive_failures"] == 0
    missing = app.post(f"/v1/webhooks/{made['id']}/deliveries/nope/redeliver", headers=auth(key))
    assert_problem(missing, 404, "webhook_delivery_not_found")


def test_after_a_rotation_both_secrets_sign_for_24_hours_then_only_the_new_one(
        app: TestClient, key: str, clock: FakeClock) -> None:
    with receiving() as receiver:
        made = register(app, key, receiver.url())
        rotated = app.post(f"/v1/webhooks/{made['id']}/rotate-secret", headers=auth(key))
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != made["secret"] and rotated.json()["previous_secret_expires_at"]
        app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        dispatcher_of(app).run_once()
        clock.advance(timedelta(hours=25))
        app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        dispatcher_of(app).run_once()
    during, after = receiver.received
    assert len(during.signatures) == 2
    assert during.verifies_with(made["secret"]) and during.verifies_with(new_secret)
    assert len(after.signatures) == 1
    # 25 h on the sender's clock: checked with the SDK helper at that time.
    now = clock.now.timestamp
    verify_webhook(after.body, after.headers, new_secret, seen=SeenIds(), now=now)
    with pytest.raises(SdkRefusal, match="signature"):
        verify_webhook(after.body, after.headers, made["secret"], seen=SeenIds(), now=now)


def test_the_dispatcher_runs_apart_from_requests_and_test_queues_only(
        app: TestClient, key: str) -> None:
    with receiving() as receiver:
        made = register(app, key, receiver.url())
        queued = app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        assert queued.status_code == 202 and queued.json()["message_id"].startswith("msg_")
        assert receiver.received == []  # nothing was sent from the request
        dispatcher_of(app).run_once()
    assert receiver.received[0].headers["webhook-id"] == queued.json()["message_id"]
    assert event_of(receiver.received[0])["data"]["endpoint_id"] == made["id"]


def test_two_dispatchers_never_send_the_same_attempt(
        databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    # The node's own scheduler dispatches every 2 s: here it would be a fourth dispatcher,
    # whose attempts this test does not count.
    app = make_client(webhook_settings(databases, tmp_path).model_copy(
        update={"webhook_dispatch_interval_seconds": 3600}), engine=FixedEngine())
    key = issue(app, "acme")
    runtime = runtime_of(app)
    with receiving() as receiver:
        made = register(app, key, receiver.url())
        for _ in range(30):
            app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        dispatchers = [Dispatcher(runtime.db, runtime.keyring, dispatcher_of(app).guard,
                                  runtime.clock, owner=f"node-{n}", batch=5)
                       for n in range(3)]
        start = threading.Barrier(len(dispatchers))
        made_attempts: list[int] = []

        def run(dispatcher: Dispatcher) -> None:
            start.wait()
            made_attempts.append(dispatcher.run_once())

        threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    ids = Counter(d.headers["webhook-id"] for d in receiver.received)
    assert len(ids) == 30 and set(ids.values()) == {1}
    assert sum(made_attempts) == 30


def test_a_callback_url_must_be_registered_and_gets_that_jobs_events_alone(
        app: TestClient, key: str) -> None:
    with receiving() as first, receiving() as second:
        register(app, key, first.url())
        register(app, key, second.url())
        refused = app.post("/v1/read", headers=auth(key), content=PNG,
                           params={"callback_url": first.url("/other")})
        assert_problem(refused, 400, "callback_url_not_registered")
        job_id = submit(app, key, callback_url=first.url())
        dispatcher_of(app).run_once()
    assert [event_of(d)["data"]["job_id"] for d in first.received] == [job_id]
    assert second.received == []


def test_an_endpoint_hears_only_the_events_it_subscribed_to(app: TestClient, key: str) -> None:
    with receiving() as receiver:
        register(app, key, receiver.url(), events=["job.deleted"])
        job_id = submit(app, key)
        dispatcher_of(app).run_once()
        assert receiver.received == []
        app.delete(f"/v1/jobs/{job_id}", headers=auth(key))
        dispatcher_of(app).run_once()
    assert [event_of(d)["type"] for d in receiver.received] == ["job.deleted"]


def test_the_reaper_queues_job_expired_when_retention_removes_the_result(
        app: TestClient, key: str, clock: FakeClock) -> None:
    with receiving() as receiver:
        register(app, key, receiver.url(), events=["job.expired"])
        job_id = submit(app, key, retention="PT1M")
        clock.advance(timedelta(minutes=2))
        assert runtime_of(app).reaper.run_once() == 1
        dispatcher_of(app).run_once()
    assert [(event_of(d)["type"], event_of(d)["data"]["job_id"]) for d in receiver.received] == [
        ("job.expired", job_id)]


def test_no_event_is_queued_for_a_change_that_rolled_back(app: TestClient, key: str) -> None:
    from ocrvault.store.repository import JobRepository
    from ocrvault.webhooks.events import EventType, queue_job_event

    runtime = runtime_of(app)
    with receiving() as receiver:
        register(app, key, receiver.url())
        job_id = submit(app, key)
        dispatcher_of(app).run_once()
        assert len(receiver.received) == 1

        def change_that_fails() -> None:
            with runtime.db.transaction() as session:
                job = JobRepository(session).by_id(job_id)
                assert job is not None
                queue_job_event(session, job, EventType.JOB_DELETED, "deleted", runtime.clock())
                raise RuntimeError("the change fails after its event was written")

        with pytest.raises(RuntimeError):
            change_that_fails()
        assert dispatcher_of(app).run_once() == 0
    assert len(receiver.received) == 1


def test_a_queued_event_survives_a_restart_and_is_sent_by_the_next_process(
        databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    settings = webhook_settings(databases, tmp_path)
    with receiving() as receiver:
        app = make_client(settings, engine=FixedEngine())
        key = issue(app, "acme")
        made = register(app, key, receiver.url())
        app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        # Another process, on the same database and keyring, that never saw the request.
        base = Foundation.open(settings, migrate=False)
        try:
            guard = guard_for(settings.webhook_allow_http, settings.webhook_allow_cidrs)
            assert Dispatcher(base.db, base.keyring, guard, utcnow, owner="next").run_once() == 1
        finally:
            base.close()
    assert receiver.received[0].verifies_with(made["secret"])


def test_the_address_is_checked_again_at_each_delivery(app: TestClient, key: str) -> None:
    with receiving() as receiver:
        made = register(app, key, receiver.url())
        dispatcher = dispatcher_of(app)
        dispatcher.guard = AddressGuard(allow_http=True)  # 127.0.0.1 no longer allowed
        app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        assert dispatcher.run_once() == 1
    assert receiver.received == []
    assert deliveries_of(app, key, made["id"])[0]["error"] == "webhook_url_refused"


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "second"])
def test_a_redirect_is_never_followed(app: TestClient, key: str, target: str) -> None:
    with receiving() as second:
        location = second.url() if target == "second" else target
        with receiving(redirect_to=location) as receiver:
            made = register(app, key, receiver.url())
            app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
            assert dispatcher_of(app).run_once() == 1
    assert len(receiver.received) == 1 and second.received == []
    attempt = deliveries_of(app, key, made["id"])[0]
    assert (attempt["status_code"], attempt["outcome"], attempt["error"]) == (
        302, "failed", "http_status")


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "https://127.0.0.1/", "https://10.0.0.1/",
    "https://localhost/hook", "https://[::1]/", "ftp://example.com/",
    "https://user:pw@example.com/",
])
def test_registration_refuses_what_the_guard_refuses(
        make_client: Callable[..., TestClient], tmp_path: Path, url: str) -> None:
    app = make_client(Settings(data_dir=tmp_path / "data", workers=1), engine=FixedEngine())
    key = issue(app, "acme")
    assert_problem(app.post("/v1/webhooks", headers=auth(key),
                            json={"url": url, "events": ["job.succeeded"]}),
                   400, "webhook_url_refused")


def test_plain_http_is_refused_unless_the_operator_allows_it(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    app = make_client(Settings(data_dir=tmp_path / "data", workers=1,
                               webhook_allow_cidrs="127.0.0.1/32"), engine=FixedEngine())
    key = issue(app, "acme")
    problem = assert_problem(app.post("/v1/webhooks", headers=auth(key),
                                      json={"url": "http://127.0.0.1:9/",
                                            "events": ["job.succeeded"]}),
                             400, "webhook_url_refused")
    assert "https" in problem["detail"]


def test_endpoints_are_per_tenant_and_environment_and_need_tenant_wide_job_visibility(
        app: TestClient, key: str) -> None:
    runtime = runtime_of(app)
    made = register(app, key, "http://127.0.0.1:9/hook")
    other_tenant = issue(app, "globex")
    test_key = runtime.access.bootstrap_tenant("acme", Environment.TEST).secret
    for stranger in (other_tenant, test_key):
        assert_problem(app.get(f"/v1/webhooks/{made['id']}", headers=auth(stranger)),
                       404, "webhook_not_found")
        assert app.get("/v1/webhooks", headers=auth(stranger)).json() == {"webhooks": []}
    developer = issue(app, "acme", Role.DEVELOPER)
    assert_problem(app.get("/v1/webhooks", headers=auth(developer)), 403, "insufficient_scope")
    own_only = app.post("/v1/keys", headers=auth(key), json={
        "name": "own-jobs", "scopes": ["webhooks:manage"], "job_visibility": "own"})
    assert own_only.status_code == 201, own_only.text
    assert_problem(app.get("/v1/webhooks", headers=auth(own_only.json()["secret"])),
                   403, "forbidden")


def test_changes_and_rotations_are_audited_and_the_secret_is_never_shown_again_or_stored(
        app: TestClient, key: str, tmp_path: Path) -> None:
    runtime = runtime_of(app)
    made = register(app, key, "http://127.0.0.1:9/hook?token=abc")
    changed = app.patch(f"/v1/webhooks/{made['id']}", headers=auth(key),
                        json={"events": ["job.failed"], "description": "new"})
    assert changed.status_code == 200 and changed.json()["events"] == ["job.failed"]
    rotated = app.post(f"/v1/webhooks/{made['id']}/rotate-secret", headers=auth(key)).json()
    shown = [app.get(f"/v1/webhooks/{made['id']}", headers=auth(key)).text,
             app.get("/v1/webhooks", headers=auth(key)).text]
    assert app.delete(f"/v1/webhooks/{made['id']}", headers=auth(key)).status_code == 204
    assert_problem(app.get(f"/v1/webhooks/{made['id']}", headers=auth(key)),
                   404, "webhook_not_found")

    entries = runtime.audit_reader.list(login(app, key), AuditQuery(target=made["id"])).entries
    assert [(e.action, json.loads(e.detail or "{}")["change"]) for e in entries] == [
        (AuditAction.WEBHOOK_CHANGED, "created"), (AuditAction.WEBHOOK_CHANGED, "updated"),
        (AuditAction.WEBHOOK_SECRET_ROTATED, "rotated"), (AuditAction.WEBHOOK_CHANGED, "deleted")]
    assert all("token" not in (e.detail or "") for e in entries)
    for secret in (made["secret"], rotated["secret"]):
        raw = secret.removeprefix("whsec_")
        assert all(raw not in text and "whsec_" not in text for text in shown)
        for path in (tmp_path / "data").rglob("*"):
            if path.is_file() and path.name != "keyring.json":
                data = path.read_bytes()
                assert raw.encode() not in data and base64.b64decode(raw) not in data


def test_https_connects_to_the_checked_address_naming_the_host_in_sni_and_host(
        app: TestClient, key: str) -> None:
    # A name only this resolver knows (.example never resolves in DNS): the delivery arrives
    # only if the connection goes to the address the guard checked, not a second lookup.
    name = "hooks.example"
    guard = AddressGuard(allow_cidrs=[ipaddress.ip_network("127.0.0.1/32")],
                         resolver=lambda host, port: {name: ["127.0.0.1"]}[host])
    authority = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(name).configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)
    runtime_of(app).webhooks.guard = guard
    dispatcher = dispatcher_of(app)
    dispatcher.guard, dispatcher.sender = guard, Sender(verify=client_tls)
    with receiving(tls=server_tls, host=name) as receiver:
        made = register(app, key, receiver.url())
        app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        assert dispatcher.run_once() == 1
    (delivery,) = receiver.received
    assert delivery.sni == name  # and the certificate was checked for the name, not the IP
    assert delivery.headers["host"] == f"{name}:{receiver.port}"
    assert delivery.verifies_with(made["secret"])


def test_secrets_are_resealed_with_a_master_key_rotation_and_hold_its_retirement_back(
        app: TestClient, key: str) -> None:
    runtime = runtime_of(app)
    with receiving() as receiver:
        made = register(app, key, receiver.url())
        app.post(f"/v1/webhooks/{made['id']}/rotate-secret", headers=auth(key))  # two sealed
        old_version = runtime.keyring.primary
        runtime.keyring.rotate()
        assert count_sealed_under(runtime.db, runtime.keyring, old_version) == 2
        assert reseal_all(runtime.db, runtime.keyring, runtime.keyring.primary) == 2
        assert count_sealed_under(runtime.db, runtime.keyring, old_version) == 0
        runtime.keyring.retire(old_version)
        app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        assert dispatcher_of(app).run_once() == 1
    assert receiver.received[0].verifies_with(made["secret"])  # the previous, in its grace


def test_ten_failed_attempts_in_a_row_mark_the_endpoint_failing_until_one_succeeds(
        app: TestClient, key: str, clock: FakeClock) -> None:
    with receiving(answers=[500] * 14) as receiver:
        made = register(app, key, receiver.url())
        for _ in range(2):
            app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        dispatcher = dispatcher_of(app)
        for _ in range(10):
            dispatcher.run_once()
            clock.advance(timedelta(hours=8))
        failing = app.get(f"/v1/webhooks/{made['id']}", headers=auth(key)).json()
        assert (failing["status"], failing["consecutive_failures"]) == ("failing", 14)
        app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        assert dispatcher.run_once() == 1  # a failing endpoint is still tried
    recovered = app.get(f"/v1/webhooks/{made['id']}", headers=auth(key)).json()
    assert (recovered["status"], recovered["consecutive_failures"]) == ("active", 0)
    assert len(receiver.received) == 15


def test_the_scheduler_role_delivers_what_the_api_role_queued(
        databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    settings = webhook_settings(databases, tmp_path)
    with receiving() as receiver:
        app = make_client(settings, engine=FixedEngine())  # its own scheduler waits an hour
        key = issue(app, "acme")
        made = register(app, key, receiver.url())
        app.post(f"/v1/webhooks/{made['id']}/test", headers=auth(key))
        scheduler = SchedulerNode.open(settings, owner="scheduler-node")
        try:
            assert scheduler.tick()  # it holds the cluster lease and runs its tasks
        finally:
            scheduler.stop()
    assert receiver.received[0].verifies_with(made["secret"])

"""Jobs through Celery on the machine's Redis and RabbitMQ: what a message carries (the
job id and Celery's envelope, as JSON), that a worker runs what an API node submits,
that pickled messages are refused, and that a broker that is down is said plainly."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from fastapi.testclient import TestClient

from ocrvault.api.app import create_app
from ocrvault.config import Settings
from ocrvault.jobs.celery_queue import TASK_NAME, CeleryQueue
from ocrvault.jobs.queue import QueueUnavailable
from ocrvault.runtime import Runtime
from ocrvault.store.repository import JobRepository
from tests.clocks import FakeClock
from tests.conftest import auth, issue, runtime_of, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import canary, encode, text_page
from tests.jobrows import completions, job_row, outbox_ids
from tests.services import MIGRATE_COMMAND, WORKER_COMMAND, BrokerSpace, broker_space

DOWN = "redis://127.0.0.1:1/5"  # nothing listens on port 1


@pytest.fixture(params=["redis", "rabbitmq"])
def space(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerSpace]:
    chosen = broker_space(request.param)
    yield chosen
    chosen.delete_queue(tmp_path)


@pytest.fixture
def redis_space(tmp_path: Path) -> Iterator[BrokerSpace]:
    chosen = broker_space("redis")
    yield chosen
    chosen.delete_queue(tmp_path)


def master_key() -> tuple[str, str]:
    """An OCRVAULT_MASTER_KEY value and the key material in it."""
    material = base64.b64encode(secrets.token_bytes(32)).decode()
    return f"1:{material}", material


def test_a_message_on_redis_carries_the_job_id_and_celerys_envelope_and_nothing_else(
        redis_space: BrokerSpace, databases: TestDatabases,
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    setting, material = master_key()
    # No workers here: the message stays on the broker to be read.
    data_dir = tmp_path / "data"
    client = make_client(redis_space.settings(data_dir, workers=0, master_key=setting,
                                              **databases.values(data_dir)))
    runtime = runtime_of(client)
    issued = runtime.access.bootstrap_tenant("acme")
    secret_text = canary()
    document = encode(text_page([secret_text], size=(900, 200), font_px=36), "PNG")

    response = client.post("/v1/read", content=document, headers=auth(issued.secret))

    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    raw = redis.Redis.from_url(redis_space.url).lrange(redis_space.queue_name, 0, -1)
    assert len(raw) == 1
    message = json.loads(raw[0])
    assert message["content-type"] == "application/json"  # never pickle
    body = base64.b64decode(message["properties"]["body_encoding"] == "base64"
                            and message["body"])
    args, kwargs, _embed = json.loads(body)
    assert (args, kwargs) == ([job_id], {})
    assert message["headers"]["task"] == TASK_NAME
    with runtime.db.transaction() as session:
        row = JobRepository(session).by_id(job_id)
        assert row is not None and row.wrapped_dek
        wrapped = row.wrapped_dek
    everything = raw[0] + body
    forbidden = {
        "the document's text": secret_text.encode(),
        "the document's bytes": document[64:128],
        "the document's bytes in base64": base64.b64encode(document[66:126]),
        "the wrapped data key": wrapped,
        "the wrapped data key in base64": base64.b64encode(wrapped),
        "the wrapped data key in hex": wrapped.hex().encode(),
        "the master key": material.encode(),
        "the API key": issued.secret.encode(),
        "the tenant": issued.tenant_id.encode(),
    }
    assert [name for name, value in forbidden.items() if value in everything] == []


def test_jobs_submitted_to_a_node_are_run_by_its_celery_worker_once(
        space: BrokerSpace, databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    client = make_client(space.settings(data_dir, workers=1, **databases.values(data_dir)))
    key = issue(client, "acme")
    page = encode(text_page(["Invoice 42"], size=(600, 200), font_px=40), "PNG")
    job_ids = [client.post("/v1/read", content=page, headers=auth(key)).json()["id"]
               for _ in range(3)]

    for job_id in job_ids:
        job = wait_for_job(client, job_id, key, timeout=120)
        assert job["status"] == "succeeded", job
        assert "Invoice 42" in job["result"]["text"]
    runtime = runtime_of(client)
    assert [completions(runtime.db, job_id) for job_id in job_ids] == [1, 1, 1]
    assert outbox_ids(runtime.db) == []


def test_a_worker_node_starting_on_celery_takes_back_only_expired_leases(
        space: BrokerSpace, databases: TestDatabases, tmp_path: Path) -> None:
    """Other nodes may be running jobs: a start must not take them (the old re-queue of
    every running job did)."""
    clock = FakeClock()
    data_dir = tmp_path / "data"
    settings = space.settings(data_dir, workers=0, job_lease_seconds=60,
                              **databases.values(data_dir))
    runtime = Runtime.build(settings, clock=clock)
    try:
        client = TestClient(create_app(runtime))  # not entered: nothing started
        key = issue(client, "acme")
        page = encode(text_page(["Invoice 42"], size=(400, 200), font_px=24), "PNG")
        live, dead = (client.post("/v1/read", content=page, headers=auth(key)).json()["id"]
                      for _ in range(2))
        assert runtime.worker.leases.claim(dead) is not None
        clock.advance(timedelta(seconds=61))
        assert runtime.worker.leases.claim(live) is not None  # claimed by a live node now

        assert runtime.leases.resume_at_start() == 1

        assert job_row(runtime.db, dead)["status"] == "queued"
        assert job_row(runtime.db, live)["status"] == "running"
    finally:
        runtime.stop()


def test_a_pickled_message_is_refused_and_the_next_job_id_still_runs(
        space: BrokerSpace, tmp_path: Path) -> None:
    queue = CeleryQueue(space.settings(tmp_path), 1)
    handled: list[str] = []
    done = threading.Event()

    def handler(job_id: str) -> None:
        handled.append(job_id)
        done.set()

    # Whoever can write to the broker: a Celery app that pickles, aimed at our queue.
    intruder = Celery("intruder", broker=space.url, set_as_current=False)
    intruder.conf.accept_content = ["json", "pickle"]
    intruder.send_task(TASK_NAME, args=["pickled-id"], queue=space.queue_name,
                       serializer="pickle")
    queue.enqueue("json-id", "acme")
    queue.start(handler)
    try:
        assert done.wait(60)
    finally:
        assert queue.stop(timeout=60) == 0
    assert handled == ["json-id"]


def test_a_queue_on_a_broker_that_is_down_says_so_at_start_and_at_enqueue(
        tmp_path: Path) -> None:
    queue = CeleryQueue(Settings(data_dir=tmp_path, queue="celery",
                                 broker_url="amqp://ocr:s3cret-pw@127.0.0.1:1//"), 1)

    with pytest.raises(QueueUnavailable) as at_start:
        queue.start(lambda _job_id: None)
    with pytest.raises(QueueUnavailable) as at_enqueue:
        queue.enqueue("job-0", "acme")

    for error in (at_start.value, at_enqueue.value):
        assert "cannot reach the Celery broker at amqp://ocr:**@127.0.0.1:1//" in str(error)
        assert "OCRVAULT_BROKER_URL" in str(error)
        assert "s3cret-pw" not in str(error)


def test_a_submission_while_the_broker_is_down_is_accepted_and_kept_in_the_outbox(
        databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    settings = databases.settings(tmp_path / "data", queue="celery", broker_url=DOWN,
                                  workers=0, reaper_interval_seconds=3600,
                                  lease_reclaim_interval_seconds=3600)
    client = make_client(settings)
    key = issue(client, "acme")
    page = encode(text_page(["Invoice 42"], size=(400, 200), font_px=24), "PNG")

    response = client.post("/v1/read", content=page, headers=auth(key))

    assert response.status_code == 202, response.text
    assert outbox_ids(runtime_of(client).db) == [response.json()["id"]]


def test_the_worker_process_on_a_broker_that_is_down_exits_at_once_saying_why(
        databases: TestDatabases, tmp_path: Path) -> None:
    setting, _ = master_key()
    env: dict[str, Any] = {**os.environ, **databases.env(tmp_path / "data"),
                           "OCRVAULT_QUEUE": "celery", "OCRVAULT_BROKER_URL": DOWN,
                           "OCRVAULT_MASTER_KEY": setting, "OCRVAULT_WORKERS": "1"}

    subprocess.run(MIGRATE_COMMAND, env=env, check=True, capture_output=True, timeout=120)
    worker = subprocess.run(WORKER_COMMAND, env=env,
                            capture_output=True, text=True, timeout=120)

    assert worker.returncode == 2, worker.stderr
    assert f"cannot reach the Celery broker at {DOWN}" in worker.stderr

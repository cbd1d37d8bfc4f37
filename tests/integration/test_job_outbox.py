"""Work is enqueued after the transaction that records it commits (jobs/outbox.py): a crash
between the commit and the enqueue loses nothing, and a submission that rolls back sends
nothing to the queue."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy.exc
from fastapi.testclient import TestClient

from ocrvault.config import Settings
from ocrvault.environments import Environment
from ocrvault.jobs.outbox import SWEEP_GRACE
from ocrvault.jobs.queue import LocalQueue, QueueUnavailable
from ocrvault.principal import Principal
from tests.conftest import auth, issue, runtime_of, wait_for_job
from tests.docgen import encode, text_page
from tests.engine_fakes import FixedEngine
from tests.jobrows import job_row, outbox_ids

PAGE = encode(text_page(["Invoice 42"], size=(400, 200), font_px=24), "PNG")


class FlakyQueue(LocalQueue):
    """A local queue whose enqueue fails while ``down`` is set, as a process that dies
    right after its commit, or a broker that is unreachable, never enqueues; it notes
    every id it does take."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.down = threading.Event()
        self.taken: list[str] = []

    def enqueue(self, job_id: str, tenant_id: str) -> None:
        if self.down.is_set():
            raise QueueUnavailable("the broker is down")
        self.taken.append(job_id)
        super().enqueue(job_id, tenant_id)


def settings_for(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", workers=1, reaper_interval_seconds=3600,
                    lease_reclaim_interval_seconds=3600)


def test_a_job_whose_enqueue_failed_after_its_commit_is_sent_by_the_sweep_and_runs(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    queue = FlakyQueue(workers=1)
    client = make_client(settings_for(tmp_path), engine=FixedEngine(), queue=queue)
    runtime = runtime_of(client)
    key = issue(client, "acme")
    queue.down.set()

    response = client.post("/v1/read", content=PAGE, headers=auth(key))

    assert response.status_code == 202, response.text  # committed: the job is safe
    job_id = response.json()["id"]
    assert job_row(runtime.db, job_id)["status"] == "queued"
    assert outbox_ids(runtime.db) == [job_id]
    assert queue.taken == []
    queue.down.clear()  # the broker is back (or another node's scheduler runs the sweep)
    outbox = runtime.leases.outbox
    assert outbox.sweep() == 0  # too young: the submitting node may still be sending it
    assert outbox.sweep(runtime.clock() + SWEEP_GRACE + timedelta(seconds=1)) == 1

    assert wait_for_job(client, job_id, key)["status"] == "succeeded"
    assert queue.taken == [job_id]
    assert outbox_ids(runtime.db) == []


def test_a_sweep_while_the_queue_is_still_down_keeps_every_row(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    queue = FlakyQueue(workers=0)
    client = make_client(settings_for(tmp_path), engine=FixedEngine(), queue=queue)
    runtime = runtime_of(client)
    key = issue(client, "acme")
    queue.down.set()
    job_ids = {client.post("/v1/read", content=PAGE, headers=auth(key)).json()["id"]
               for _ in range(3)}

    assert runtime.leases.outbox.sweep(runtime.clock() + 2 * SWEEP_GRACE) == 0

    assert set(outbox_ids(runtime.db)) == job_ids


def test_a_dispatched_job_leaves_no_outbox_row(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    queue = FlakyQueue(workers=1)
    client = make_client(settings_for(tmp_path), engine=FixedEngine(), queue=queue)
    key = issue(client, "acme")
    job_id = client.post("/v1/read", content=PAGE, headers=auth(key)).json()["id"]

    assert queue.taken == [job_id]
    assert outbox_ids(runtime_of(client).db) == []
    assert wait_for_job(client, job_id, key)["status"] == "succeeded"


def test_a_submission_that_rolls_back_sends_nothing_to_the_queue(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    queue = FlakyQueue(workers=1)
    client = make_client(settings_for(tmp_path), engine=FixedEngine(), queue=queue)
    runtime = runtime_of(client)
    # A tenant that does not exist (deleted meanwhile): the job row's foreign key fails at
    # the commit, and the database rolls the whole submission back.
    ghost = Principal(tenant_id="00000000-0000-0000-0000-000000000000", key_id="gone",
                      scopes=frozenset(), environment=Environment.LIVE)
    params = runtime.jobs.params(None, None, None)

    with pytest.raises(sqlalchemy.exc.IntegrityError):
        runtime.jobs.submit(ghost, PAGE, params)

    assert queue.taken == []
    assert outbox_ids(runtime.db) == []
    assert runtime.leases.outbox.sweep(runtime.clock() + 2 * SWEEP_GRACE) == 0

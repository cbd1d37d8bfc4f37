"""Jobs run under leases: a job whose worker stops renewing goes back to the queue, the
next worker finishes it, and its outcome is stored once, by whoever holds the lease.

Time is a FakeClock moved by hand, and leases are long (an hour) so that no heartbeat
beats during a test: a worker stuck in a BlockingEngine stands for one that died.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from ocrvault.config import Settings
from ocrvault.jobs.leases import LeaseLost
from ocrvault.jobs.queue import LocalQueue
from ocrvault.jobs.worker import MAX_ATTEMPTS
from tests.clocks import FakeClock
from tests.conftest import auth, issue, runtime_of, wait_for_job
from tests.docgen import encode, text_page
from tests.engine_fakes import BlockingEngine, FixedEngine
from tests.jobrows import completions, job_row

LEASE = timedelta(hours=1)
PAGE = encode(text_page(["Invoice 42"], size=(400, 200), font_px=24), "PNG")


def lease_settings(tmp_path: Path, workers: int) -> Settings:
    return Settings(data_dir=tmp_path / "data", workers=workers, reaper_interval_seconds=3600,
                    lease_reclaim_interval_seconds=3600,
                    job_lease_seconds=LEASE.total_seconds())


def submit(client: TestClient, key: str) -> str:
    response = client.post("/v1/read", content=PAGE, headers=auth(key))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_a_claim_takes_a_queued_job_once_under_a_lease_that_names_its_holder(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    clock = FakeClock()
    client = make_client(lease_settings(tmp_path, 0), engine=FixedEngine(), clock=clock)
    runtime = runtime_of(client)
    job_id = submit(client, issue(client, "acme"))

    lease = runtime.worker.leases.claim(job_id)
    again = runtime.worker.leases.claim(job_id)

    assert lease is not None and again is None
    row = job_row(runtime.db, job_id)
    assert (row["status"], row["attempts"], row["lease_owner"]) == ("running", 1, lease.holder)
    assert row["lease_expires_at"] == clock.now + LEASE


def test_reclaim_returns_only_expired_leases_to_the_queue_and_enqueues_them(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    clock, sent = FakeClock(), list[str]()
    client = make_client(lease_settings(tmp_path, 0), engine=FixedEngine(), clock=clock,
                         queue=_Recording(sent))
    runtime = runtime_of(client)
    key = issue(client, "acme")
    dead, alive = submit(client, key), submit(client, key)
    sent.clear()  # the submissions' own
    keeper = runtime.worker.leases
    dead_lease, alive_lease = keeper.claim(dead), keeper.claim(alive)
    assert dead_lease and alive_lease
    clock.advance(LEASE - timedelta(seconds=1))
    keeper.renew(alive_lease)  # a live worker's heartbeat
    clock.advance(timedelta(seconds=2))

    assert runtime.leases.reclaim_expired() == [dead]

    assert sent == [dead]
    assert job_row(runtime.db, dead)["status"] == "queued"
    assert job_row(runtime.db, dead)["lease_owner"] is None
    assert job_row(runtime.db, alive)["status"] == "running"
    try:  # the dead worker, were it only slow, finds out at its next renewal
        keeper.renew(dead_lease)
        raise AssertionError("a lease that was reclaimed was renewed")
    except LeaseLost:
        pass


class _Recording(LocalQueue):
    """A local queue with no workers that notes what it is given."""

    def __init__(self, sent: list[str]) -> None:
        super().__init__(workers=0)
        self.sent = sent

    def enqueue(self, job_id: str, tenant_id: str) -> None:
        self.sent.append(job_id)


def test_a_worker_that_lost_its_lease_stores_nothing_and_the_next_holder_stores_once(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    clock, engine = FakeClock(), BlockingEngine()
    client = make_client(lease_settings(tmp_path, 2), engine=engine, clock=clock)
    runtime = runtime_of(client)
    key = issue(client, "acme")
    job_id = submit(client, key)
    assert engine.started.wait(30)  # the first worker is inside the page, and stays there
    first_holder = job_row(runtime.db, job_id)["lease_owner"]

    clock.advance(LEASE + timedelta(seconds=1))  # as if it had died: no renewal came
    assert runtime.leases.reclaim_expired() == [job_id]
    engine.started.clear()
    assert engine.started.wait(30)  # the second worker has claimed it and is reading it
    second_holder = job_row(runtime.db, job_id)["lease_owner"]
    engine.release.set()  # both workers finish the page; only the holder may store it

    job = wait_for_job(client, job_id, key)

    assert job["status"] == "succeeded"
    assert job["result"]["text"].startswith("Invoice 42")
    assert second_holder not in (None, first_holder)
    assert job_row(runtime.db, job_id)["attempts"] == 2
    runtime.queue.stop(timeout=30)  # both workers are done with it
    assert completions(runtime.db, job_id) == 1


def test_a_job_whose_lease_ran_out_on_every_attempt_fails_with_a_stable_code(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    clock = FakeClock()
    client = make_client(lease_settings(tmp_path, 0), engine=FixedEngine(), clock=clock)
    runtime = runtime_of(client)
    key = issue(client, "acme")
    job_id = submit(client, key)
    for _attempt in range(MAX_ATTEMPTS):  # each worker dies on it
        assert runtime.worker.leases.claim(job_id) is not None
        clock.advance(LEASE + timedelta(seconds=1))
        assert runtime.leases.reclaim_expired() == [job_id]

    runtime.worker.process(job_id)  # the next worker to get it gives up on it

    job = client.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
    assert job["status"] == "failed"
    assert job["error"]["code"] == "processing_failed"
    assert job_row(runtime.db, job_id)["attempts"] == MAX_ATTEMPTS + 1
    assert completions(runtime.db, job_id) == 1


def test_page_progress_renews_the_lease(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    clock = FakeClock()
    client = make_client(lease_settings(tmp_path, 0), engine=FixedEngine(), clock=clock)
    runtime = runtime_of(client)
    job_id = submit(client, issue(client, "acme"))
    lease = runtime.worker.leases.claim(job_id)
    assert lease is not None
    clock.advance(LEASE - timedelta(seconds=1))

    runtime.worker.leases.progress(lease, 3)

    row = job_row(runtime.db, job_id)
    assert row["lease_expires_at"] == clock.now + LEASE
    assert runtime.leases.reclaim_expired(clock.now + timedelta(seconds=2)) == []


def test_the_heartbeat_keeps_the_lease_of_a_page_that_takes_longer_than_the_lease(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    engine = BlockingEngine()  # one page, held for as long as the test likes
    settings = lease_settings(tmp_path, 1).model_copy(update={"job_lease_seconds": 1.5})
    client = make_client(settings, engine=engine)
    runtime = runtime_of(client)
    key = issue(client, "acme")
    job_id = submit(client, key)
    assert engine.started.wait(30)
    first = job_row(runtime.db, job_id)["lease_expires_at"]

    # No page ends, so only the heartbeat can move the expiry; three beats outlast it.
    for beat in range(3):
        deadline = time.monotonic() + 30
        while job_row(runtime.db, job_id)["lease_expires_at"] <= first:
            assert time.monotonic() < deadline, f"no renewal after beat {beat}"
            time.sleep(0.05)
        first = job_row(runtime.db, job_id)["lease_expires_at"]
        assert runtime.leases.reclaim_expired() == []
    engine.release.set()

    assert wait_for_job(client, job_id, key)["status"] == "succeeded"
    assert job_row(runtime.db, job_id)["attempts"] == 1

"""A worker killed with SIGKILL mid-job loses nothing: another worker finishes its job after
the lease runs out, within the lease plus 10 s, and every job's outcome is stored once.

Real processes: two workers (``ocrvault serve --role worker``, Tesseract loaded,
one thread each) on Celery with Redis or RabbitMQ, one database (SQLite in the shared
data dir, or PostgreSQL) between them and this test, which submits as an API node does
and runs the lease reclaim as the scheduler role does.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ocrvault.api.app import create_app
from ocrvault.jobs.leases import JobLeases
from ocrvault.retention.reaper import PeriodicThread
from ocrvault.runtime import Runtime
from tests.conftest import auth, issue
from tests.databases import TestDatabases
from tests.docgen import pdf_of, text_page
from tests.jobrows import completions, job_row
from tests.services import WORKER_COMMAND, BrokerSpace, broker_space

LEASE_SECONDS = 5.0
JOBS = 3
PAGES = 6  # small pages: about a second of OCR a job, long enough to be killed inside
WAIT = 120.0  # a bound on waiting for the processes, never a pause


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def ready(self) -> bool:
        return "consuming" in self.log.read_text(errors="replace")


@pytest.fixture(params=["redis", "rabbitmq"])
def space(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerSpace]:
    chosen = broker_space(request.param)
    yield chosen
    chosen.delete_queue(tmp_path)


def eventually(condition: object, what: str, timeout: float = WAIT) -> None:
    """Poll ``condition`` (a callable) until it holds; fail saying ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_worker_killed_mid_job_has_its_job_finished_by_another_once_within_the_lease_plus_10s(
        space: BrokerSpace, databases: TestDatabases, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    master_key = f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    settings = space.settings(data_dir, workers=0, master_key=master_key,
                              job_lease_seconds=LEASE_SECONDS, **databases.values(data_dir))
    api = Runtime.build(settings)  # migrates the shared database before the workers start
    env = {**os.environ, **databases.env(data_dir), "OCRVAULT_QUEUE": "celery",
           "OCRVAULT_BROKER_URL": space.url, "OCRVAULT_QUEUE_NAME": space.queue_name,
           "OCRVAULT_MASTER_KEY": master_key, "OCRVAULT_WORKERS": "1",
           "OCRVAULT_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
           "OCRVAULT_DEFAULT_ENGINE": "tesseract", "OCRVAULT_REAPER_INTERVAL_SECONDS": "3600"}
    workers: list[Worker] = []
    leases = JobLeases(api.db, api.queue, api.clock)
    scheduler = PeriodicThread("test-scheduler", 0.5, leases.run_periodic)
    try:
        for number in range(2):
            log = tmp_path / f"worker-{number}.log"
            with log.open("wb") as sink:
                workers.append(Worker(subprocess.Popen(
                    WORKER_COMMAND, env=env,
                    stdout=sink, stderr=subprocess.STDOUT), log))
        eventually(lambda: all(w.ready() for w in workers), "both workers to consume")
        scheduler.start()
        client = TestClient(create_app(api))  # not entered: this process runs no workers
        key = issue(client, "acme")
        document = pdf_of([text_page([f"Page {n} of the report"], size=(700, 160),
                                     font_px=40) for n in range(1, PAGES + 1)])
        job_ids = [client.post("/v1/read", content=document, headers=auth(key)).json()["id"]
                   for _ in range(JOBS)]

        victim_job, victim = find_a_worker_inside_a_job(api, job_ids, workers)
        victim.process.send_signal(signal.SIGKILL)
        killed_at = datetime.now(UTC)
        assert victim.process.wait(WAIT) == -signal.SIGKILL

        eventually(lambda: all(job_row(api.db, j)["status"] in ("succeeded", "failed")
                               for j in job_ids), "every job to finish")

        rows = {job_id: job_row(api.db, job_id) for job_id in job_ids}
        assert {job_id: row["status"] for job_id, row in rows.items()} == \
            dict.fromkeys(job_ids, "succeeded")
        assert [completions(api.db, job_id) for job_id in job_ids] == [1] * JOBS
        assert rows[victim_job]["attempts"] == 2
        assert rows[victim_job]["completed_at"] - killed_at <= \
            timedelta(seconds=LEASE_SECONDS + 10)
        result = client.get(f"/v1/jobs/{victim_job}", headers=auth(key)).json()["result"]
        assert len(result["pages"]) == PAGES
        assert [line for line in result["text"].splitlines() if line.strip()] == \
            [f"Page {n} of the report" for n in range(1, PAGES + 1)]
    finally:
        scheduler.stop()
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                worker.process.kill()
        api.stop()


def find_a_worker_inside_a_job(api: Runtime, job_ids: list[str],
                               workers: list[Worker]) -> tuple[str, Worker]:
    """The first job seen running with a page done and two left, and the worker process holding it
    (its lease names the process: host:pid:claim)."""
    by_pid = {worker.process.pid: worker for worker in workers}
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for job_id in job_ids:
            row = job_row(api.db, job_id)
            # Pages left to read: the job's result is not written yet (a worker killed
            # after writing it but before finishing has it written again by the next).
            inside = 0 < (row["pages_done"] or 0) < PAGES - 1
            if row["status"] == "running" and inside and row["lease_owner"]:
                pid = int(row["lease_owner"].split(":")[1])
                return job_id, by_pid[pid]
        time.sleep(0.02)
    raise AssertionError("no worker was seen inside a job")

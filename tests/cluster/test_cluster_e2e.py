"""The cluster as an operator runs it (scripts/cluster.py): PostgreSQL, Redis, a moto S3
server, one scheduler, two API nodes and two workers, each its own ``ocrvault serve
--role ...`` process with a data dir of its own. Jobs go in through both API nodes; one
worker is killed with SIGKILL inside a job; every job still finishes exactly once, either
API node serves every result, and the bucket holds ciphertext only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocrvault.store.db import Database
from scripts.cluster import POSTGRES_URL, REDIS_URL, Cluster, Node, wait_until
from tests.conftest import auth
from tests.docgen import canary, pdf_of, text_page
from tests.jobrows import completions, job_row
from tests.leaks import distinctive_window
from tests.services import require_service

LEASE_SECONDS = 5.0
JOBS = 4
PAGES = 6  # small pages: a few seconds of OCR a job, long enough to be killed inside
WAIT = 240.0  # a bound on waiting for the processes (a loaded machine), never a pause


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    require_service("postgresql", POSTGRES_URL)
    require_service("redis", REDIS_URL)
    with Cluster(tmp_path / "cluster", lease_seconds=LEASE_SECONDS, versioned_bucket=True,
                 env={"OCRVAULT_DEFAULT_ENGINE": "tesseract",
                      "OCRVAULT_REAPER_INTERVAL_SECONDS": "3600"}) as running:
        yield running


@pytest.fixture
def db(cluster: Cluster) -> Iterator[Database]:
    """The cluster's database, read from outside as an operator would."""
    database = Database(cluster.database_url)
    yield database
    database.dispose()


def test_jobs_through_both_api_nodes_finish_once_despite_a_worker_killed_mid_job(
        cluster: Cluster, db: Database) -> None:
    first, second = cluster.api_urls
    key = cluster.admin_key
    planted = [canary() for _ in range(JOBS)]
    documents = [pdf_of([text_page([f"Page {n} {words}"], size=(1100, 160), font_px=40)
                         for n in range(1, PAGES + 1)]) for words in planted]
    job_ids = [httpx.post(f"{(first, second)[n % 2]}/v1/read", content=document,
                          headers=auth(key), timeout=60).raise_for_status().json()["id"]
               for n, document in enumerate(documents)]

    victim_job, victim = a_worker_inside_a_job(cluster, db, job_ids)
    cluster.kill(victim)
    killed_at = datetime.now(UTC)

    wait_until(lambda: all(job_row(db, j)["status"] in ("succeeded", "failed")
                           for j in job_ids), "every job to finish", WAIT)

    rows = {job_id: job_row(db, job_id) for job_id in job_ids}
    assert {j: row["status"] for j, row in rows.items()} == dict.fromkeys(job_ids, "succeeded")
    assert [completions(db, job_id) for job_id in job_ids] == [1] * JOBS
    assert rows[victim_job]["attempts"] == 2
    assert rows[victim_job]["completed_at"] - killed_at <= timedelta(seconds=LEASE_SECONDS + 10)

    for job_id, words in zip(job_ids, planted, strict=True):
        from_first, from_second = (job_result(url, key, job_id) for url in (first, second))
        assert from_first == from_second
        assert [line for line in from_first["text"].splitlines() if line.strip()] == \
            [f"Page {n} {words}" for n in range(1, PAGES + 1)]

    objects = cluster.object_versions()  # every version ever written (a versioned bucket)
    results = {k: v for k, v in objects.items() if k.endswith("/result")}
    assert sorted(k.split("/")[-2] for k in results) == sorted(job_ids)
    assert all(len(versions) == 1 for versions in results.values()), "a result written twice"
    needles = [w.encode() for w in planted] + [distinctive_window(d) or b"" for d in documents]
    assert not [k for k, versions in objects.items() for body in versions
                for needle in needles if needle in body], "plaintext in the bucket"


def a_worker_inside_a_job(cluster: Cluster, db: Database,
                          job_ids: list[str]) -> tuple[str, Node]:
    """The first job seen running with a page done and two left, and the worker process holding it
    (its lease names the process: host:pid:claim)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for job_id in job_ids:
            row = job_row(db, job_id)
            # Pages left to read: the job's result is not written yet (a worker killed
            # after writing it but before finishing has it written again by the next).
            inside = 0 < (row["pages_done"] or 0) < PAGES - 1
            if row["status"] == "running" and inside and row["lease_owner"]:
                node = cluster.node_by_pid(int(row["lease_owner"].split(":")[1]))
                assert node is not None and node.role == "worker"
                return job_id, node
        time.sleep(0.02)
    raise AssertionError("no worker was seen inside a job")


def job_result(url: str, key: str, job_id: str) -> Any:
    return httpx.get(f"{url}/v1/jobs/{job_id}", headers=auth(key),
                     timeout=60).raise_for_status().json()["result"]

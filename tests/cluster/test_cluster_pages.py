"""A job's pages across the cluster's nodes (jobs/spread.py), as an operator runs it: two
worker processes of one thread each, so the worker that claims a PDF can only read its
pages alone or with the other process's help. The other process reads pages of the job,
the document comes back whole and in order, and no page part is left in the bucket.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ocrvault.store.db import Database
from scripts.cluster import POSTGRES_URL, REDIS_URL, Cluster, wait_until
from tests.conftest import auth
from tests.docgen import canary, pdf_of, text_page
from tests.jobrows import job_row
from tests.services import require_service

PAGES = 8
WAIT = 240.0  # a bound on waiting for the processes (a loaded machine), never a pause


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    require_service("postgresql", POSTGRES_URL)
    require_service("redis", REDIS_URL)
    with Cluster(tmp_path / "cluster", api_nodes=1, workers=2, threads=1,
                 env={"OCRVAULT_DEFAULT_ENGINE": "tesseract",
                      "OCRVAULT_REAPER_INTERVAL_SECONDS": "3600"}) as running:
        yield running


def test_a_pdf_claimed_by_one_worker_has_pages_read_by_the_other(cluster: Cluster) -> None:
    (url,) = cluster.api_urls
    words = canary()
    document = pdf_of([text_page([f"Page {n} {words}"], size=(1100, 160), font_px=40)
                       for n in range(1, PAGES + 1)])
    job_id = httpx.post(f"{url}/v1/read", content=document, headers=auth(cluster.admin_key),
                        timeout=60).raise_for_status().json()["id"]

    db = Database(cluster.database_url)
    try:
        wait_until(lambda: job_row(db, job_id)["status"] in ("succeeded", "failed"),
                   "the job to finish", WAIT)
        row = job_row(db, job_id)
    finally:
        db.dispose()

    assert (row["status"], row["pages_done"], row["attempts"]) == ("succeeded", PAGES, 1)
    owner_pid = int(row["lease_owner"].split(":")[1])
    helped = {node.pid: [int(n) for n in re.findall(
        rf"job {job_id}: page (\d+) of {PAGES} read here", node.output())]
        for node in cluster.workers_running()}
    assert helped.pop(owner_pid) == [], "the owner's own pages are not page tasks"
    (other,) = helped.values()
    assert other and len(set(other)) == len(other), helped
    result = httpx.get(f"{url}/v1/jobs/{job_id}", headers=auth(cluster.admin_key),
                       timeout=60).raise_for_status().json()["result"]
    assert [line for line in result["text"].splitlines() if line.strip()] == \
        [f"Page {n} {words}" for n in range(1, PAGES + 1)]
    assert [key for key in cluster.object_versions() if "/pages/" in key] == []

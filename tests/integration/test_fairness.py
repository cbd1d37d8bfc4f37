"""OCR workers are shared between tenants: one tenant's backlog does not hold up another's job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import auth, issue, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, text_page
from tests.engine_fakes import BlockingEngine

PAGE = encode(text_page(["Invoice 42"], size=(400, 200), font_px=24), "PNG")


def submit(client: TestClient, key: str) -> str:
    response = client.post("/v1/read", content=PAGE, headers=auth(key))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_another_tenants_job_runs_before_the_50th_job_of_a_tenant_with_a_backlog(
        databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    engine = BlockingEngine()  # holds the first job until the whole backlog is queued
    settings = databases.settings(tmp_path / "data", workers=1, reaper_interval_seconds=3600)
    client = make_client(settings, engine=engine)
    busy, other = issue(client, "busy"), issue(client, "other")
    backlog = [submit(client, busy) for _ in range(50)]
    assert engine.started.wait(30)
    late = submit(client, other)
    engine.release.set()

    def finished(job_id: str, key: str) -> datetime:
        job = wait_for_job(client, job_id, key, timeout=120)
        assert job["status"] == "succeeded", job
        return datetime.fromisoformat(job["completed_at"])

    late_done = finished(late, other)
    ahead = sum(finished(job_id, busy) < late_done for job_id in backlog)
    assert ahead <= 2  # the job in progress and the one whose turn came first

"""Stopping ``ocrvault serve`` with a job running: the first Ctrl-C says what it waits for,
a second one stops at once, and the job, still queued, finishes after the next start.

A real subprocess and real Tesseract: signals, uvicorn's shutdown and the process exit are
what is under test. The job is a many-page PDF, long enough to be running when signalled.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.databases import TestDatabases
from tests.docgen import pdf_of, text_page
from tests.e2e.live import LiveServer

PAGES = 40
ENV = {"OCRVAULT_WORKERS": "1"}


def admin_key(data_dir: Path) -> str:
    [path] = data_dir.glob("admin-key-*.txt")
    return path.read_text().strip()


def job_status(server: LiveServer, key: str, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v1/jobs/{job_id}",
                         headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for_status(server: LiveServer, key: str, job_id: str, wanted: set[str],
                    timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (job := job_status(server, key, job_id))["status"] not in wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"job still {job['status']} after {timeout}s")
        time.sleep(0.1)
    return job


@pytest.fixture
def servers(databases: TestDatabases) -> Iterator[list[LiveServer]]:
    """Servers to stop after the test (before ``databases`` drops their schemas)."""
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.close()


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_and_the_next_start_finishes_the_job(
    tmp_path: Path, servers: list[LiveServer], databases: TestDatabases,
) -> None:
    data_dir = tmp_path / "data"
    env = {**ENV, **databases.env(data_dir)}
    first = LiveServer(data_dir, env=env)
    servers.append(first)
    first.wait_ready()
    key = admin_key(data_dir)
    pdf = pdf_of([text_page([f"Page number {n} of the report"], size=(1000, 300))
                  for n in range(1, PAGES + 1)], dpi=100)
    submitted = httpx.post(f"{first.url}/v1/read", content=pdf, timeout=60,
                           headers={"Authorization": f"Bearer {key}"})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    wait_for_status(first, key, job_id, {"running"}, timeout=60)

    first.interrupt()
    first.wait_for_output("waiting for 1 running job (Ctrl-C again to stop now; they stay "
                          "queued for the next start)")
    assert first.process.poll() is None  # it waits for the job
    first.interrupt()
    first.wait_exit(timeout=30)
    assert "stopped with 1 job unfinished; the next start resumes them" in first.output

    second = LiveServer(data_dir, env=env)
    servers.append(second)
    second.wait_ready()
    job = wait_for_status(second, key, job_id, {"succeeded", "failed"}, timeout=240)
    assert job["status"] == "succeeded", job
    assert len(job["result"]["pages"]) == PAGES
    assert "Page number 40 of the report" in job["result"]["text"]


@pytest.mark.slow
def test_shutdown_timeout_bounds_the_wait_for_running_jobs(
    tmp_path: Path, servers: list[LiveServer], databases: TestDatabases,
) -> None:
    data_dir = tmp_path / "data"
    server = LiveServer(data_dir, "--shutdown-timeout", "1",
                        env={**ENV, **databases.env(data_dir)})
    servers.append(server)
    server.wait_ready()
    key = admin_key(data_dir)
    pdf = pdf_of([text_page([f"Page {n}"], size=(850, 300)) for n in range(1, PAGES + 1)],
                 dpi=100)
    submitted = httpx.post(f"{server.url}/v1/read", content=pdf, timeout=60,
                           headers={"Authorization": f"Bearer {key}"})
    job_id = submitted.json()["id"]
    wait_for_status(server, key, job_id, {"running"}, timeout=60)

    server.interrupt()
    server.wait_exit(timeout=30)

    assert "stopped with 1 job unfinished" in server.output

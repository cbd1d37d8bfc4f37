"""OCR workers are shared between tenants: one tenant's backlog does not hold up another's job."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from PIL.Image import Image

from ocrvault.engines.base import RecognizeOptions
from ocrvault.model import Page
from tests.conftest import auth, issue, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, text_page
from tests.engine_fakes import BlockingEngine

PAGE = encode(text_page(["Invoice 42"], size=(400, 200), font_px=24), "PNG")
LATE_SIZE = (420, 200)  # the other tenant's page, told apart by its size
LATE_PAGE = encode(text_page(["Invoice 43"], size=LATE_SIZE, font_px=24), "PNG")


def submit(client: TestClient, key: str, page: bytes = PAGE) -> str:
    response = client.post("/v1/read", content=page, headers=auth(key))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


class ReadingOrder(BlockingEngine):
    """Notes the size of each page it reads, in the order the worker reads them: which
    job ran when, by the worker's own turns. A job's ``completed_at`` does not say that:
    each job's thread finishes it (seals, writes) after its page is read, and a thread
    held up for a moment lets a job read later finish first."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        with self._lock:
            self.sizes.append(image.size)
        return super().recognize(image, options)


def test_another_tenants_job_runs_before_the_50th_job_of_a_tenant_with_a_backlog(
        databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    engine = ReadingOrder()  # holds the first job until the whole backlog is queued
    settings = databases.settings(tmp_path / "data", workers=1, reaper_interval_seconds=3600)
    client = make_client(settings, engine=engine)
    busy, other = issue(client, "busy"), issue(client, "other")
    backlog = [submit(client, busy) for _ in range(50)]
    assert engine.started.wait(30)
    late = submit(client, other, LATE_PAGE)
    engine.release.set()

    for job_id, key in [(late, other), *((job_id, busy) for job_id in backlog)]:
        assert wait_for_job(client, job_id, key, timeout=120)["status"] == "succeeded"
    ahead = engine.sizes.index(LATE_SIZE)  # the backlog's pages read before the late one
    assert ahead <= 2  # the job in progress and the one whose turn came first

"""Jobs survive a restart of the embedded deployment: none lost, none done twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from ocrvault.store.repository import JobRepository
from tests.conftest import auth, issue, runtime_of, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, text_page


def test_queued_and_interrupted_jobs_complete_after_restart_and_done_jobs_are_not_redone(
    databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = make_client(databases.settings(data_dir, workers=1))
    key = issue(first, "acme")
    body = encode(text_page(["already done"]), "PNG")
    done_id = first.post("/v1/read", content=body, headers=auth(key)).json()["id"]
    done_before = wait_for_job(first, done_id, key)
    first.__exit__(None, None, None)

    stopped = make_client(databases.settings(data_dir, workers=0))  # accepts, never processes
    queued_id = stopped.post("/v1/read", content=encode(text_page(["left in queue"]), "PNG"),
                             headers=auth(key)).json()["id"]
    running_id = stopped.post("/v1/read", content=encode(text_page(["cut off mid run"]), "PNG"),
                              headers=auth(key)).json()["id"]
    # As if a worker died mid-job: its lease has long to run, but the embedded node is the
    # only worker, so its next start takes the job back at once.
    assert runtime_of(stopped).worker.leases.claim(running_id) is not None
    stopped.__exit__(None, None, None)

    restarted = make_client(databases.settings(data_dir, workers=1))

    assert wait_for_job(restarted, queued_id, key)["result"]["text"] == "left in queue"
    assert wait_for_job(restarted, running_id, key)["result"]["text"] == "cut off mid run"
    done_after = restarted.get(f"/v1/jobs/{done_id}", headers=auth(key)).json()
    assert done_after["completed_at"] == done_before["completed_at"]
    with runtime_of(restarted).db.transaction() as session:
        jobs = JobRepository(session)
        assert [jobs.by_id(j).attempts for j in (done_id, queued_id, running_id)] == [1, 1, 2]

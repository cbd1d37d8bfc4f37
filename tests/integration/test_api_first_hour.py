"""What a new user reaches for in the first hour (issue 12): language lists in any spelling,
page ranges past the end, job listings, the engines and languages on offer, progress, and
72-dpi "images to PDF" files. A fast fake engine reads every page."""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from ocrvault.audit import AuditAction
from ocrvault.config import Settings
from ocrvault.engines.base import RecognizeOptions
from ocrvault.model import EngineInfo, Page
from ocrvault.principal import Role
from tests.clocks import FakeClock
from tests.conftest import assert_problem, auth, issue, runtime_of, wait_for_job
from tests.docgen import encode, pdf_of, text_page
from tests.engine_fakes import FixedEngine

PNG = encode(text_page(["first hour"], size=(400, 200)), "PNG")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(make_client: Callable[..., TestClient], settings: Settings,
        clock: FakeClock) -> TestClient:
    return make_client(settings, engine=FixedEngine(), clock=clock)


@pytest.fixture
def key(app: TestClient) -> str:
    return issue(app, "acme")


def sync_read(app: TestClient, key: str, query: str, body: bytes = PNG) -> Any:
    """POST /v1/read:sync with ``query`` sent exactly as written (no re-encoding)."""
    return app.post(f"/v1/read:sync?{query}", content=body, headers=auth(key))


# -- item 1: languages=eng+deu, eng deu, eng,deu, eng%2Bdeu -----------------------------

@pytest.mark.parametrize("spelled", ["eng+deu", "eng%20deu", "eng,deu", "eng%2Bdeu",
                                     "eng%2Cdeu", "eng%2C+deu", "eng++deu,eng"])
def test_languages_are_read_in_every_spelling_of_a_list(app: TestClient, key: str,
                                                        spelled: str) -> None:
    response = sync_read(app, key, f"languages={spelled}")
    assert response.status_code == 200, response.text
    assert response.json()["languages"] == ["eng", "deu"]


def test_an_unknown_language_names_the_installed_ones_in_a_form_that_works(
    app: TestClient, key: str
) -> None:
    body = assert_problem(sync_read(app, key, "languages=eng+xyz"), 400, "invalid_parameter")
    assert "'xyz'" in body["detail"] and "installed: deu, eng" in body["detail"]
    suggested = re.search(r"languages=(\S+?)\.?$", body["detail"])
    assert suggested is not None, body["detail"]
    again = sync_read(app, key, f"languages={suggested[1]}")
    assert again.status_code == 200, again.text
    assert sorted(again.json()["languages"]) == ["deu", "eng"]
    assert_problem(sync_read(app, key, "languages=+,"), 400, "invalid_parameter")


# -- item 5: a page range past the last page reads what exists ------------------------

def test_a_range_past_the_last_page_reads_the_pages_there_are(app: TestClient,
                                                              key: str) -> None:
    created = app.post("/v1/read", params={"pages": "1-3"}, content=PNG, headers=auth(key))
    assert created.status_code == 202, created.text
    job = wait_for_job(app, created.json()["id"], key)
    assert job["status"] == "succeeded", job
    assert [p["number"] for p in job["result"]["pages"]] == [1]
    assert (job["result"]["pages_requested"], job["result"]["pages_missing"]) == ("1-3", "2-3")
    assert (job["page_count"], job["pages_total"]) == (1, 1)

    pdf = pdf_of([text_page([f"page {n}"], size=(400, 200)) for n in (1, 2)])
    sync = sync_read(app, key, "pages=2-5", pdf)
    assert sync.status_code == 200, sync.text
    assert [p["number"] for p in sync.json()["pages"]] == [2]
    assert sync.json()["pages_missing"] == "3-5"
    complete = sync_read(app, key, "pages=1")
    assert (complete.json()["pages_requested"], complete.json()["pages_missing"]) == ("1", None)


def test_a_range_of_no_existing_page_is_refused_on_both_routes(app: TestClient,
                                                               key: str) -> None:
    for route in ("/v1/read", "/v1/read:sync"):
        response = app.post(route, params={"pages": "2-3"}, content=PNG, headers=auth(key))
        body = assert_problem(response, 422, "pages_out_of_range")
        assert "has 1 page" in body["detail"]


# -- item 13: a 72-dpi receipt on a 15 x 21 inch page --------------------------------

def test_a_72_dpi_images_to_pdf_receipt_is_read_at_its_own_pixels(app: TestClient,
                                                                  key: str) -> None:
    receipt = pdf_of([Image.new("RGB", (1080, 1527), "white")], dpi=72)  # 15 x 21.2 in
    response = sync_read(app, key, "", receipt)
    assert response.status_code == 200, response.text
    [page] = response.json()["pages"]
    assert (page["width"], page["height"]) == (1080, 1527)


# -- item 8: GET /v1/engines and GET /v1/languages ------------------------------------

def test_engines_and_languages_are_listed_from_the_running_engine(app: TestClient,
                                                                  key: str) -> None:
    engines = app.get("/v1/engines", headers=auth(key))
    assert engines.status_code == 200, engines.text
    assert engines.json() == {"engines": [{"name": "fake-fixed", "version": "1",
                                           "languages": ["deu", "eng"], "default": True}]}
    languages = app.get("/v1/languages", headers=auth(key))
    assert languages.status_code == 200, languages.text
    assert languages.json() == {"languages": [
        {"code": "deu", "name": "German", "engines": ["fake-fixed"]},
        {"code": "eng", "name": "English", "engines": ["fake-fixed"]},
    ]}


# -- item 7: GET /v1/jobs ------------------------------------------------------------

def submit(app: TestClient, key: str) -> str:
    response = app.post("/v1/read", content=PNG, headers=auth(key))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    wait_for_job(app, job_id, key)
    return job_id


def listed(app: TestClient, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of the listing, following next_cursor."""
    jobs: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = app.get("/v1/jobs", params={**params, **({"cursor": cursor} if cursor else {})},
                           headers=auth(key))
        assert response.status_code == 200, response.text
        page = response.json()
        jobs += page["jobs"]
        cursor = page["next_cursor"]
        if cursor is None:
            return jobs


def test_jobs_are_listed_newest_first_by_cursor_with_metadata_only(
    app: TestClient, key: str, clock: FakeClock
) -> None:
    runtime = runtime_of(app)
    tenant = runtime.access.bootstrap_tenant("acme").tenant_id
    developer = runtime.access.issue_key(tenant, "dev", Role.DEVELOPER).secret  # sees its own
    ids = []
    for submitter in (key, developer, key, developer, key):
        ids.append(submit(app, submitter))
        clock.advance(timedelta(seconds=10))
    assert app.delete(f"/v1/jobs/{ids[0]}", headers=auth(key)).status_code == 200
    other_tenant = issue(app, "globex")
    submit(app, other_tenant)

    everything = listed(app, key, limit=2)
    assert [job["id"] for job in everything] == ids[:0:-1]  # newest first, deleted left out
    assert all("result" not in job and "text" not in job for job in everything)
    assert {job["status"] for job in everything} == {"succeeded"}
    assert [job["id"] for job in listed(app, developer, limit=1)] == [ids[3], ids[1]]
    assert [job["id"] for job in listed(app, key, status="deleted")] == [ids[0]]
    assert listed(app, key, status="queued") == []
    start = everything[-1]["created_at"]
    end = everything[0]["created_at"]
    assert [job["id"] for job in listed(app, key, since=start, until=end)] == [ids[3], ids[2],
                                                                                ids[1]]
    assert listed(app, other_tenant) and ids[1] not in {
        job["id"] for job in listed(app, other_tenant)}

    # One entry per listing started (5 in this tenant), not per page (7 requests).
    audited = app.get("/v1/audit", params={"action": AuditAction.JOB_LISTED.value},
                      headers=auth(key)).json()["entries"]
    assert len(audited) == 5


def test_jobs_created_in_the_same_instant_are_each_listed_once(app: TestClient,
                                                               key: str) -> None:
    ids = {submit(app, key) for _ in range(3)}  # the fake clock stands still
    assert sorted(job["id"] for job in listed(app, key, limit=1)) == sorted(ids)


OUT_OF_RANGE = base64.urlsafe_b64encode(
    f"0001-01-01T00:00:00+14:00|{uuid.uuid4()}".encode()).decode()


@pytest.mark.parametrize("cursor", ["not-base64!", "MjAyNi0wMS0wMXxub3QtYW4taWQ",
                                    "eA", "A" * 300, OUT_OF_RANGE])
def test_a_cursor_that_is_not_one_given_is_an_invalid_parameter(app: TestClient, key: str,
                                                                cursor: str) -> None:
    assert_problem(app.get("/v1/jobs", params={"cursor": cursor}, headers=auth(key)), 400,
                   "invalid_parameter")


@pytest.mark.parametrize("limit", ["0", "201", "ten"])
def test_the_page_size_is_bounded(app: TestClient, key: str, limit: str) -> None:
    assert_problem(app.get("/v1/jobs", params={"limit": limit}, headers=auth(key)), 400,
                   "invalid_parameter")


# -- item 9: progress ----------------------------------------------------------------

class HeldOnPageTwo(FixedEngine):
    """Reads page 1 at once and holds page 2 until released."""

    info = EngineInfo(name="fake-held", version="1")

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()

    def recognize(self, image: Image.Image, options: RecognizeOptions) -> Page:
        if options.page_number == 2:
            self.holding.set()
            assert self.release.wait(60), "never released"
        return super().recognize(image, options)


def test_a_running_job_shows_the_pages_done(make_client: Callable[..., TestClient],
                                            settings: Settings) -> None:
    engine = HeldOnPageTwo()
    app = make_client(settings, engine=engine)
    key = issue(app, "acme")
    pdf = pdf_of([text_page([f"page {n}"], size=(400, 200)) for n in (1, 2, 3)])
    job_id = app.post("/v1/read", content=pdf, headers=auth(key)).json()["id"]
    try:
        assert engine.holding.wait(60)
        running = app.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
        assert (running["status"], running["pages_done"], running["pages_total"]) == (
            "running", 1, 3)
        [summary] = app.get("/v1/jobs", headers=auth(key)).json()["jobs"]
        assert summary["pages_done"] == 1
    finally:
        engine.release.set()
    done = wait_for_job(app, job_id, key)
    assert (done["status"], done["pages_done"], done["pages_total"]) == ("succeeded", 3, 3)

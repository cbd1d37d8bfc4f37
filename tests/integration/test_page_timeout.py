"""OCRVAULT_PAGE_TIMEOUT_SECONDS reaches the engine: a page that takes longer fails the job
with processing_timeout, and the default leaves an ordinary page alone."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from ocrvault.config import Settings
from tests.conftest import auth, issue, wait_for_job
from tests.docgen import encode, text_page

PAGE = encode(text_page([f"Line {n} of a page that takes a while to read" for n in range(30)],
                        size=(1600, 1400), font_px=36), "PNG")


def test_a_page_past_the_page_timeout_fails_the_job_with_processing_timeout(
        make_client: Callable[..., TestClient], settings: Settings) -> None:
    client = make_client(settings.model_copy(update={"page_timeout_seconds": 0.001}))
    key = issue(client, "acme")
    job = client.post("/v1/read", content=PAGE, headers=auth(key)).json()

    done = wait_for_job(client, job["id"], key)

    assert done["status"] == "failed"
    assert done["error"]["code"] == "processing_timeout"


def test_the_default_page_timeout_lets_an_ordinary_page_through(
        make_client: Callable[..., TestClient], settings: Settings) -> None:
    assert settings.page_timeout_seconds == 300
    client = make_client(settings)
    key = issue(client, "acme")
    job = client.post("/v1/read", content=PAGE, headers=auth(key)).json()

    assert wait_for_job(client, job["id"], key)["status"] == "succeeded"

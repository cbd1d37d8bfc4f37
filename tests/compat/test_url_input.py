"""URL input through the Azure doors: off by default (``InvalidImageUrl``); when an
operator turns it on, fetch.py's guard refuses what is not a public https address."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ocrvault.api.app import create_app
from ocrvault.runtime import Runtime
from tests.compat.conftest import Live
from tests.databases import TestDatabases
from tests.engine_fakes import FixedEngine
from tests.servers import serving

READ = "/vision/v3.2/read/analyze"
DI = "/documentintelligence/documentModels/prebuilt-read:analyze?api-version=2024-11-30"


@pytest.fixture(scope="module")
def url_on(tmp_path_factory: pytest.TempPathFactory,
           module_databases: TestDatabases) -> Iterator[tuple[str, str]]:
    settings = module_databases.settings(tmp_path_factory.mktemp("url") / "data", workers=1,
                                         reaper_interval_seconds=3600, url_input=True)
    runtime = Runtime.build(settings, engine=FixedEngine())
    with serving(create_app(runtime)) as port:
        yield f"http://127.0.0.1:{port}", runtime.access.bootstrap_tenant("url").secret


def test_url_input_is_off_by_default(live: Live) -> None:
    for path, body in ((READ, {"url": "https://example.com/a.png"}),
                       (DI, {"urlSource": "https://example.com/a.png"})):
        answer = httpx.post(live.url + path, json=body,
                            headers={"Ocp-Apim-Subscription-Key": live.key})
        assert answer.status_code == 400 and "turned off" in answer.text


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/a.png", "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/a.png", "https://10.0.0.8/a.png", "http://example.com/a.png",
    "https://localhost:8443/a.png"])
def test_when_on_the_guard_refuses_non_public_and_plain_http(url_on: tuple[str, str],
                                                             url: str) -> None:
    base, key = url_on
    headers = {"Ocp-Apim-Subscription-Key": key}
    read = httpx.post(base + READ, json={"url": url}, headers=headers)
    assert read.status_code == 400 and read.json()["code"] == "InvalidImageUrl", read.text
    di = httpx.post(base + DI, json={"urlSource": url}, headers=headers)
    assert di.status_code == 400 and di.json()["error"]["code"] == "InvalidRequest"

"""Request bodies: the key is checked before a body is read, every body has a cap, uploads
share a budget, and one tenant's synchronous reads cannot fill the server."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from ocrvault.api.deps import AuthFirstRoute
from ocrvault.api.limits import UploadBudget
from ocrvault.api.routes import audit, health, jobs, keys, read, retention
from ocrvault.config import Settings
from ocrvault.errors import Throttled
from ocrvault.principal import RequestContext, Scope
from tests.conftest import assert_problem, auth, issue, runtime_of
from tests.databases import TestDatabases
from tests.engine_fakes import BlockingEngine, FixedEngine

OVER_64_KIB = json.dumps({"name": "x" * 70_000, "role": "developer"}).encode()


def json_operations(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every operation the app documents with a JSON body."""
    paths = client.get("/openapi.json").json()["paths"]
    return [(method, re.sub(r"\{[^}]+\}", "x1", path)) for path, operations in paths.items()
            for method, operation in operations.items()
            if "application/json" in operation.get("requestBody", {}).get("content", {})]


@pytest.fixture
def fast(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, engine=FixedEngine())


def test_every_route_with_a_json_body_checks_the_key_before_reading_the_body(
        fast: TestClient) -> None:
    operations = json_operations(fast)
    assert {path for _, path in operations} >= {"/v1/keys", "/v1/retention"}
    for method, path in operations:
        # Over the cap and not JSON: read first, it would be a 413 or a 400.
        response = fast.request(method, path, content=OVER_64_KIB + b"{",
                                headers={"Content-Type": "application/json"})
        assert_problem(response, 401, "unauthorized")
        assert response.headers["connection"] == "close"  # the rest is not read either


@pytest.mark.parametrize("module", [audit, health, jobs, keys, read, retention])
def test_every_route_is_one_that_authenticates_before_reading_a_body(module: ModuleType
                                                                     ) -> None:
    for route in module.router.routes:
        assert not isinstance(route, APIRoute) or route.body_field is None or isinstance(
            route, AuthFirstRoute), route.path


def test_a_json_body_over_64_kib_is_refused_whole_or_chunked(fast: TestClient) -> None:
    key = issue(fast, "acme")
    whole = fast.post("/v1/keys", content=OVER_64_KIB,
                      headers={**auth(key), "Content-Type": "application/json"})
    assert_problem(whole, 413, "body_too_large")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(OVER_64_KIB), 8192):
            yield OVER_64_KIB[start:start + 8192]

    chunked = fast.post("/v1/keys", content=chunks(),
                        headers={**auth(key), "Content-Type": "application/json"})
    assert_problem(chunked, 413, "body_too_large")
    small = fast.post("/v1/keys", json={"name": "ci", "role": "developer"}, headers=auth(key))
    assert small.status_code == 201, small.text


def test_uploads_keep_their_own_limit_beyond_the_json_cap(
        databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    settings = databases.settings(tmp_path / "data", workers=1, reaper_interval_seconds=3600,
                                  max_file_bytes=200_000)
    client = make_client(settings, engine=FixedEngine())
    key = issue(client, "acme")
    near_limit = b"\x89PNG\r\n\x1a\n" + bytes(150_000)  # past 64 KiB: refused by ingest only
    assert client.post("/v1/read", content=near_limit, headers=auth(key)).status_code in (
        415, 422)
    assert_problem(client.post("/v1/read", content=bytes(250_000), headers=auth(key)),
                   413, "file_too_large")


def test_more_than_100_header_fields_are_refused(fast: TestClient) -> None:
    headers = {f"X-Filler-{number}": "1" for number in range(101)}
    assert_problem(fast.get("/healthz", headers=headers), 431, "headers_too_large")
    assert fast.get("/healthz", headers=dict(list(headers.items())[:90])).status_code == 200


def test_a_tenant_at_its_synchronous_read_cap_is_refused_before_its_upload_is_read(
        databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    settings = databases.settings(tmp_path / "data", workers=1, reaper_interval_seconds=3600,
                                  max_sync_reads_per_tenant=1)
    engine = BlockingEngine()
    client = make_client(settings, engine=engine)
    acme, other = issue(client, "acme"), issue(client, "other")
    jobs = runtime_of(client).jobs
    principal = runtime_of(client).access.authenticate(
        acme, RequestContext(request_id="test", client_ip="127.0.0.1"), Scope.READ_SUBMIT)
    with jobs.sync_slot(principal):  # one of acme's reads in progress
        refused = client.post("/v1/read:sync", content=b"anything", headers=auth(acme))
        body = assert_problem(refused, 429, "quota_exceeded")
        assert "synchronous reads" in body["detail"]
        assert refused.headers["retry-after"] == "1"
        # Another tenant is not affected: its read gets as far as checking the file.
        assert_problem(client.post("/v1/read:sync", content=b"anything", headers=auth(other)),
                       415, "unsupported_media_type")
    engine.release.set()


def test_the_upload_budget_keeps_half_for_other_tenants_and_answers_503_when_full() -> None:
    async def scenario() -> None:
        budget = UploadBudget(total=1000, wait_seconds=0.2)
        async with budget.hold("acme") as first:
            await first.cover(500)
            async with budget.hold("acme") as second:
                with pytest.raises(Throttled) as busy:
                    await second.cover(1)  # acme holds its half
                assert busy.value.code == "server_busy" and busy.value.retry_after == 1
            async with budget.hold("other") as others:
                await others.cover(500)  # the other half is there for others
                async with budget.hold("third") as third:
                    with pytest.raises(Throttled):
                        await third.cover(1)  # the whole budget is held
        assert budget.held == 0

    asyncio.run(scenario())


def test_an_upload_waits_for_room_that_frees_up() -> None:
    async def scenario() -> None:
        budget = UploadBudget(total=1000, wait_seconds=10)
        held, finish = asyncio.Event(), asyncio.Event()

        async def first_upload() -> None:
            async with budget.hold("acme") as reservation:
                await reservation.cover(500)
                held.set()
                await finish.wait()

        first = asyncio.create_task(first_upload())
        await held.wait()
        async with budget.hold("acme") as second:
            waiting = asyncio.create_task(second.cover(400))
            done, _ = await asyncio.wait({waiting}, timeout=0.2)
            assert not done  # acme's half is held by the first upload
            finish.set()
            await asyncio.wait_for(waiting, 5)
            assert budget.held == 400
        await first
        assert budget.held == 0

    asyncio.run(scenario())

"""Shared fixtures: a real app per test on its own data dir, with real OCR."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ocrvault.api.app import create_app
from ocrvault.config import Settings
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.principal import Role
from ocrvault.runtime import Runtime
from ocrvault.store.db import Database
from tests.s3server import aws_test_environment, moto_server

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def engine() -> Iterator[TesseractEngine]:
    """One loaded Tesseract for the whole run: the engine is stateless between pages."""
    tesseract = TesseractEngine()
    yield tesseract
    tesseract.close()


@pytest.fixture(scope="session")
def aws_credentials() -> Iterator[None]:
    """Test credentials where boto3 looks for them, for the rest of the run (any order of
    S3 fixtures then sees the same environment)."""
    with aws_test_environment():
        yield


@pytest.fixture(scope="session")
def s3_endpoint(aws_credentials: None) -> Iterator[str]:
    """A real S3-protocol server (moto's) for the run; take buckets with new_bucket()."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", workers=2, reaper_interval_seconds=3600)


@pytest.fixture
def make_client(engine: TesseractEngine) -> Iterator[Callable[..., TestClient]]:
    """Builds a started app on the given settings; everything is stopped at teardown."""
    opened: list[TestClient] = []

    def make(settings: Settings, **runtime_args: Any) -> TestClient:
        runtime = Runtime.build(settings, engine=runtime_args.pop("engine", engine), **runtime_args)
        client = TestClient(create_app(runtime), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings)


def migrated(settings: Settings) -> Settings:
    """``settings`` on a database that `ocrvault migrate` has brought to this code's schema
    (roles other than 'all' start only on one)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    db.migrate()
    db.dispose()
    return settings


def runtime_of(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def admin_key(client: TestClient) -> str:
    return runtime_of(client).access.bootstrap_tenant("acme").secret


def issue(client: TestClient, tenant: str, role: Role = Role.ADMIN) -> str:
    access = runtime_of(client).access
    tenant_key = access.bootstrap_tenant(tenant)
    if role is Role.ADMIN:
        return tenant_key.secret
    return access.issue_key(tenant_key.tenant_id, f"{tenant} {role}", role).secret


def wait_for_job(client: TestClient, job_id: str, key: str, timeout: float = 180,
                 headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Poll the job as a client would until it has finished."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/jobs/{job_id}", headers={**auth(key), **(headers or {})})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("succeeded", "failed"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {body['status']} after {timeout}s")
        time.sleep(0.05)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith(code)
    assert body["title"] and body["detail"]
    return body

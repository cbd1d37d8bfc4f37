"""Shared fixtures: a real app per test on its own data dir, with real OCR.

The PostgreSQL run (``make test-postgres``: OCRVAULT_TEST_DATABASE_URL set, see
tests/databases.py) runs exactly the tests that use the ``databases``,
``module_databases`` or ``package_databases`` fixture, directly or through another
fixture (``settings``, ``make_client``, ``client``...); every other test opens no database
and is reported as skipped there, with that reason, having run in the SQLite run.
"""

from __future__ import annotations

import os
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
from tests.databases import ON_POSTGRES, TestDatabases, postgres_unreachable
from tests.s3server import aws_test_environment, moto_server

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def engine() -> Iterator[TesseractEngine]:
    """One loaded Tesseract for the whole run: the engine is stateless between pages."""
    tesseract = TesseractEngine()
    yield tesseract
    tesseract.close()


DATABASE_FIXTURES = frozenset({"databases", "module_databases", "package_databases"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not ON_POSTGRES:
        return
    unreachable = postgres_unreachable()
    if unreachable is not None and os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI=true and {unreachable}")
    no_database = pytest.mark.skip(reason="opens no database: the SQLite run covers it")
    for item in items:
        if not DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(no_database)
        elif unreachable is not None:
            item.add_marker(pytest.mark.skip(reason=unreachable))


@pytest.fixture(autouse=True)
def _a_database_test_says_so(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test that made a SQLite database in its tmp_path behind the ``databases``
    fixture's back: on the SQLite run, one without the fixture (the PostgreSQL run would
    skip it); on the PostgreSQL run, one that has it but opened a file beside its schema."""
    names = set(request.fixturenames)
    watched = (request.getfixturevalue("tmp_path") if "tmp_path" in names
               and (ON_POSTGRES or not DATABASE_FIXTURES & names) else None)
    yield
    made = sqlite_files(watched) if watched is not None else []
    assert not made, f"{made[0]}: open databases through the databases fixture (conftest.py)"


def sqlite_files(root: Path) -> list[Path]:
    """SQLite databases under ``root``, whatever their names (by the file's own header)."""
    found = []
    for path in sorted(root.rglob("*")):
        try:
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as file:
                    if file.read(16) == b"SQLite format 3\0":
                        found.append(path)
        except OSError:  # a file a test made unreadable, or a socket: not a database
            continue
    return found
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
def databases() -> Iterator[TestDatabases]:
    """This test's databases (see tests/databases.py), dropped after it."""
    with TestDatabases() as made:
        yield made


@pytest.fixture(scope="module")
def module_databases() -> Iterator[TestDatabases]:
    """Databases for module-scoped fixtures, dropped after the module."""
    with TestDatabases() as made:
        yield made


@pytest.fixture(scope="package")
def package_databases() -> Iterator[TestDatabases]:
    """Databases for package-scoped fixtures, dropped after the package."""
    with TestDatabases() as made:
        yield made


@pytest.fixture
def settings(databases: TestDatabases, tmp_path: Path) -> Settings:
    return databases.settings(tmp_path / "data", workers=2, reaper_interval_seconds=3600)


@pytest.fixture
def make_client(engine: TesseractEngine,
                databases: TestDatabases) -> Iterator[Callable[..., TestClient]]:
    """Builds a started app on the given settings; everything is stopped at teardown,
    before ``databases`` drops their schemas. Settings that name no database get their data
    dir's from ``databases`` (so a test may build them inline); use ``runtime_of(client)``
    or ``databases`` to reach it, not the settings."""
    opened: list[TestClient] = []

    def make(settings: Settings, **runtime_args: Any) -> TestClient:
        if settings.database_url is None:
            settings = settings.model_copy(update=databases.values(settings.data_dir))
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


def read_succeeded(client: TestClient, key: str, data: bytes, **params: str) -> dict[str, Any]:
    """``data`` submitted with ``params`` to /v1/read, and its job once it has succeeded."""
    response = client.post("/v1/read", content=data, params=params, headers=auth(key))
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"], key)
    assert job["status"] == "succeeded", job
    return job


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith(code)
    assert body["title"] and body["detail"]
    return body

"""One composition per role (issue 13): an API node answers without ever creating an OCR
engine, a worker node runs what an API node queued, and each role but 'all' starts only on
a database already at this code's schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from ocrvault.api.app import create_app
from ocrvault.compose.api import ApiNode
from ocrvault.compose.parts import Foundation
from ocrvault.compose.scheduler import SchedulerNode
from ocrvault.compose.worker import WorkerNode
from ocrvault.config import Settings
from ocrvault.engines.base import OcrEngine
from ocrvault.engines.catalog import EngineCatalog, EngineSpec
from ocrvault.jobs.queue import LocalQueue
from ocrvault.runtime import Runtime
from ocrvault.store.db import Database, SchemaNotCurrent, code_revisions
from tests.conftest import assert_problem, auth, migrated, wait_for_job
from tests.docgen import encode, text_page
from tests.engine_fakes import FixedEngine

PNG = encode(text_page(["roles"], size=(400, 200)), "PNG")
SRC = Path(__file__).resolve().parents[2] / "src"


class RecordingCatalog(EngineCatalog):
    """The fake engine, described by a spec, with every creation recorded."""

    def __init__(self) -> None:
        self.creations: list[str] = []
        fake = FixedEngine()

        def create() -> OcrEngine:
            self.creations.append(fake.info.name)
            return fake

        super().__init__({fake.info.name: create}, fake.info.name,
                         {fake.info.name: lambda: EngineSpec.of(fake)})


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return migrated(settings)


@pytest.fixture
def queue() -> LocalQueue:
    """Stands in for a broker both nodes reach: one queue object shared between them."""
    return LocalQueue(1)


def test_the_api_role_lists_engines_checks_languages_and_queues_without_creating_an_engine(
        api_settings: Settings, queue: LocalQueue) -> None:
    catalog = RecordingCatalog()
    node = ApiNode.open(api_settings, queue=queue, engines=catalog)
    with TestClient(create_app(node), raise_server_exceptions=False) as client:
        key = node.access.bootstrap_tenant("acme").secret
        engines = client.get("/v1/engines", headers=auth(key))
        assert engines.json() == {"engines": [{"name": "fake-fixed", "version": "1",
                                               "languages": ["deu", "eng"], "default": True}]}
        languages = client.get("/v1/languages", headers=auth(key))
        assert [entry["code"] for entry in languages.json()["languages"]] == ["deu", "eng"]
        refused = client.post("/v1/read?languages=fra", content=PNG, headers=auth(key))
        assert_problem(refused, 400, "invalid_parameter")
        submitted = client.post("/v1/read?languages=deu", content=PNG, headers=auth(key))
        assert submitted.status_code == 202, submitted.text
        sync = client.post("/v1/read:sync", content=PNG, headers=auth(key))
        assert_problem(sync, 503, "engine_unavailable")
        assert "POST /v1/read" in sync.json()["detail"]
    assert catalog.creations == []


def test_the_api_role_is_ready_without_an_engine_and_serves_no_metrics_on_its_port(
        api_settings: Settings, queue: LocalQueue) -> None:
    catalog = RecordingCatalog()
    with TestClient(create_app(ApiNode.open(api_settings, queue=queue, engines=catalog))
                    ) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) == {"database", "blob_store", "key_service"}
        # Metrics are on OCRVAULT_METRICS_PORT (telemetry/metrics.py), not for tenants.
        assert client.get("/metrics").status_code == 404
    assert catalog.creations == []


def test_a_job_queued_by_an_api_node_is_run_by_a_worker_node(
        api_settings: Settings, queue: LocalQueue) -> None:
    api = ApiNode.open(api_settings, queue=queue, engines=RecordingCatalog())
    worker = WorkerNode.open(api_settings, engine=FixedEngine(), queue=queue)
    worker.start()
    try:
        with TestClient(create_app(api)) as client:
            key = api.access.bootstrap_tenant("acme").secret
            submitted = client.post("/v1/read", content=PNG, headers=auth(key))
            assert submitted.status_code == 202, submitted.text
            job = wait_for_job(client, submitted.json()["id"], key)
            assert job["status"] == "succeeded"
            assert job["result"]["pages"][0]["engine"] == "fake-fixed"
    finally:
        worker.stop()


# A real process: whether anything imported RapidOCR's runtime or created an engine is
# visible only in a process that did nothing else.
API_NODE_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from ocrvault.api.app import create_app
from ocrvault.compose.api import ApiNode
from ocrvault.config import Settings
from ocrvault.jobs.queue import LocalQueue

node = ApiNode.open(Settings(data_dir=sys.argv[1], workers=1), queue=LocalQueue(1))
with TestClient(create_app(node)) as client:
    key = {"Authorization": "Bearer " + node.access.bootstrap_tenant("acme").secret}
    engines = client.get("/v1/engines", headers=key).json()["engines"]
    languages = client.get("/v1/languages", headers=key).json()["languages"]
    submitted = client.post("/v1/read?languages=eng", content=open(sys.argv[2], "rb").read(),
                            headers=key).status_code
print(json.dumps({
    "engines": sorted(e["name"] for e in engines),
    "languages": sorted(entry["code"] for entry in languages),
    "submitted": submitted,
    "created": node.engines.created,
    "loaded": sorted(m for m in ("onnxruntime", "rapidocr", "ocrvault.engines.rapidocr",
                                 "ocrvault.jobs.worker", "ocrvault.runtime") if m in sys.modules),
}))
"""


def env_of(settings: Settings) -> dict[str, str]:
    """The environment that gives a node process ``settings``' database."""
    return {"OCRVAULT_DATABASE_URL": settings.database_url} if settings.database_url else {}


def test_a_real_api_node_describes_the_installed_engines_and_loads_none(
        api_settings: Settings, tmp_path: Path) -> None:
    page = tmp_path / "page.png"
    page.write_bytes(PNG)
    done = subprocess.run([sys.executable, "-c", API_NODE_PROBE, str(api_settings.data_dir),
                           str(page)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(SRC),
                               **env_of(api_settings)}, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["engines"] == ["auto", "rapidocr", "tesseract"]
    assert {"eng", "chi_sim"} <= set(seen["languages"])
    assert seen["submitted"] == 202
    assert seen["created"] == []
    assert seen["loaded"] == []


# -- the schema check ---------------------------------------------------------------------

def _stamp(settings: Settings, revision: str) -> None:
    db = Database(settings.resolved_database_url)
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    db.dispose()


OPENERS = {
    "api": lambda settings: ApiNode.open(settings, queue=LocalQueue(1),
                                         engines=RecordingCatalog()),
    "worker": lambda settings: WorkerNode.open(settings, engine=FixedEngine(),
                                               queue=LocalQueue(1)),
    "scheduler": lambda settings: SchedulerNode.open(settings),
    "all without migrating": lambda settings: Runtime.build(
        settings.model_copy(update={"migrate_on_start": False}), engine=FixedEngine()),
}


@pytest.mark.parametrize("role", sorted(OPENERS))
def test_a_node_refuses_a_database_never_migrated_naming_ocrvault_migrate(
        settings: Settings, role: str) -> None:
    settings.data_dir.mkdir(mode=0o700, parents=True)
    with pytest.raises(SchemaNotCurrent) as refused:
        OPENERS[role](settings)
    assert "no ocrvault schema" in refused.value.detail
    assert "`ocrvault migrate`" in refused.value.detail


@pytest.mark.parametrize("role", sorted(OPENERS))
def test_a_node_refuses_a_schema_older_than_its_code(settings: Settings, role: str) -> None:
    _stamp(migrated(settings), "0006")
    with pytest.raises(SchemaNotCurrent) as refused:
        OPENERS[role](settings)
    assert "at revision 0006" in refused.value.detail
    assert "`ocrvault migrate`" in refused.value.detail


@pytest.mark.parametrize("role", [*sorted(OPENERS), "all, migrating"])
def test_a_node_refuses_a_schema_newer_than_its_code(settings: Settings, role: str) -> None:
    _stamp(migrated(settings), "9999_from_the_future")
    opener = OPENERS.get(role, lambda s: Runtime.build(s, engine=FixedEngine()))
    with pytest.raises(SchemaNotCurrent) as refused:
        opener(settings)
    assert "9999_from_the_future, newer than this code" in refused.value.detail


def test_role_all_migrates_on_start_by_default(settings: Settings) -> None:
    runtime = Runtime.build(settings, engine=FixedEngine())
    try:
        assert runtime.db.schema_revisions() == code_revisions()
    finally:
        runtime.stop()


def test_every_role_starts_on_a_migrated_database(api_settings: Settings) -> None:
    for role, opener in OPENERS.items():
        node = opener(api_settings)
        assert isinstance(node.base, Foundation), role
        node.stop()

"""Issue 10 through the API: a key acts only on keys within its rights, revoking a key
revokes what it made, a key may see only its own jobs, names are plain text, and refused
requests counted in memory reach the log at shutdown."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ocrvault.api.app import create_app
from ocrvault.audit import AuditAction
from ocrvault.config import Settings
from ocrvault.retention.policy import RetentionPolicy
from ocrvault.runtime import Runtime
from ocrvault.store.db import Database
from ocrvault.store.tables import AuditEntryRow
from tests.conftest import assert_problem, auth, runtime_of, wait_for_job
from tests.docgen import encode, text_page
from tests.engine_fakes import FixedEngine

PNG = encode(text_page(["reach"]), "PNG")
POLICY = RetentionPolicy().as_dict()


@pytest.fixture
def app(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, engine=FixedEngine())


@pytest.fixture
def root(app: TestClient) -> str:
    return runtime_of(app).access.bootstrap_tenant("acme").secret


def make_key(app: TestClient, maker: str, **body: Any) -> dict[str, Any]:
    response = app.post("/v1/keys", json={"name": "k", **body}, headers=auth(maker))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def key_operations(key_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [("POST", f"/v1/keys/{key_id}/rotate", {}),
            ("PUT", f"/v1/keys/{key_id}/retention", {"json": POLICY}),
            ("GET", f"/v1/keys/{key_id}/retention", {}),
            ("GET", f"/v1/keys/{key_id}", {}),
            ("DELETE", f"/v1/keys/{key_id}", {})]


def test_a_key_manager_cannot_rotate_revoke_or_override_an_admin_key(
    app: TestClient, root: str,
) -> None:
    manager = make_key(app, root, scopes=["keys:manage", "policies:manage"])["secret"]
    admin = make_key(app, root, role="admin")
    for method, path, request in key_operations(admin["id"]):
        body = assert_problem(app.request(method, path, headers=auth(manager), **request),
                              403, "forbidden")
        assert "scopes it lacks" in body["detail"]
    assert app.get("/v1/audit", headers=auth(admin["secret"])).status_code == 200
    assert app.get(f"/v1/keys/{admin['id']}", headers=auth(root)).json()["revoked_at"] is None
    # The same operations on a key within its rights still work.
    peer = make_key(app, root, scopes=["keys:manage"])
    for method, path, request in key_operations(peer["id"]):
        response = app.request(method, path, headers=auth(manager), **request)
        assert response.status_code == 200, (method, path, response.text)


def test_revoking_a_key_revokes_its_children_and_grandchildren(
    app: TestClient, root: str,
) -> None:
    parent = make_key(app, root, role="admin")
    child = make_key(app, parent["secret"], role="admin")
    grandchild = make_key(app, child["secret"], role="reviewer")
    assert app.delete(f"/v1/keys/{parent['id']}", headers=auth(root)).status_code == 200
    for key in (parent, child, grandchild):
        assert_problem(app.get(f"/v1/jobs/{'0' * 36}", headers=auth(key["secret"])), 401,
                       "unauthorized")
    shown = app.get(f"/v1/keys/{grandchild['id']}", headers=auth(root)).json()
    assert shown["revoked_at"] is not None and shown["revoked_with"] == parent["id"]
    revoked = [e["target_id"] for e in app.get(
        "/v1/audit", params={"action": "key:api_key:revoked"}, headers=auth(root)).json()[
        "entries"]]
    assert sorted(revoked) == sorted(k["id"] for k in (parent, child, grandchild))


def submit(app: TestClient, key: str) -> str:
    response = app.post("/v1/read", content=PNG, headers=auth(key))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_a_developer_key_sees_and_deletes_only_its_own_jobs(app: TestClient, root: str) -> None:
    first = make_key(app, root, role="developer")
    second = make_key(app, root, role="developer")
    theirs, mine = submit(app, first["secret"]), submit(app, second["secret"])
    for job_id in (theirs, mine):
        wait_for_job(app, job_id, root)  # an admin key sees the tenant's jobs
    assert_problem(app.get(f"/v1/jobs/{theirs}", headers=auth(second["secret"])), 404,
                   "job_not_found")
    assert_problem(app.get(f"/v1/jobs/{theirs}/outputs/text", headers=auth(second["secret"])),
                   404, "job_not_found")
    assert_problem(app.delete(f"/v1/jobs/{theirs}", headers=auth(second["secret"])), 404,
                   "job_not_found")
    bulk = app.delete("/v1/jobs", params={"before": "2100-01-01T00:00:00Z"},
                      headers=auth(second["secret"])).json()
    assert bulk["ids"] == [mine]
    assert app.get(f"/v1/jobs/{theirs}", headers=auth(first["secret"])).status_code == 200
    assert first["job_visibility"] == "own"
    wide = make_key(app, root, role="developer", job_visibility="tenant")["secret"]
    assert app.get(f"/v1/jobs/{theirs}", headers=auth(wide)).status_code == 200


def test_an_own_key_cannot_make_a_tenant_key(app: TestClient, root: str) -> None:
    narrow = make_key(app, root, role="admin", job_visibility="own")
    assert_problem(app.post("/v1/keys", json={"name": "wide", "role": "reviewer",
                                              "job_visibility": "tenant"},
                            headers=auth(narrow["secret"])), 403, "forbidden")
    assert make_key(app, narrow["secret"], role="reviewer")["job_visibility"] == "own"


@pytest.mark.parametrize("name", ["two\nlines", "\x1b[31mred", "\u202egpj.exe", "x" * 101])
def test_key_names_refuse_control_characters_and_length(
    app: TestClient, root: str, name: str,
) -> None:
    assert_problem(app.post("/v1/keys", json={"name": name, "role": "reviewer"},
                            headers=auth(root)), 400, "invalid_parameter")


def test_counted_refusals_reach_the_log_when_the_service_stops(settings: Settings) -> None:
    runtime = Runtime.build(settings, engine=FixedEngine())
    with TestClient(create_app(runtime)) as client:
        for _ in range(50):
            assert client.get("/v1/keys", headers=auth("ocv_live_" + "x" * 36)).status_code == 401
    database = Database(settings.resolved_database_url)
    with database.transaction() as session:
        rows = session.scalars(select(AuditEntryRow)).all()
    database.dispose()
    single = sum(1 for r in rows if r.action == AuditAction.AUTH_REFUSED)
    counted = sum(json.loads(r.detail or "{}")["count"] for r in rows
                  if r.action == AuditAction.AUTH_REFUSALS_AGGREGATED)
    assert single + counted == 50 and counted > 0

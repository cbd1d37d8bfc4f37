"""Requests that race on one row on PostgreSQL, where two transactions may read it at once
(SQLite's single writer refuses the second one's write instead). Each test pauses the
first request inside its transaction (tests/races.py), so the order is fixed, and fails if
the second decided on what it read before the first committed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from ocrvault.audit import AuditAction
from ocrvault.config import Settings
from tests.conftest import auth, runtime_of
from tests.databases import ON_POSTGRES, TestDatabases
from tests.races import PausedAudit, race

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES, reason="SQLite has one writer: the second request's write is refused, "
    "not interleaved; the PostgreSQL run (make test-postgres) proves this")


@pytest.fixture
def root(client: TestClient) -> str:
    return runtime_of(client).access.bootstrap_tenant("acme").secret


@pytest.fixture
def key(client: TestClient, root: str) -> dict[str, Any]:
    made = client.post("/v1/keys", json={"name": "ci", "role": "developer"}, headers=auth(root))
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def paused(client: TestClient, monkeypatch: pytest.MonkeyPatch, service: str,
           action: AuditAction) -> PausedAudit:
    target = getattr(runtime_of(client), service)
    pause = PausedAudit(target.audit, action)
    monkeypatch.setattr(target, "audit", pause)
    return pause


def key_audits(client: TestClient, root: str, action: AuditAction, key_id: str) -> int:
    entries = client.get("/v1/audit", params={"action": action.value, "target": key_id},
                         headers=auth(root)).json()["entries"]
    return len(entries)


def test_a_rotation_that_waited_for_another_keeps_the_first_rotations_secret_in_grace(
        client: TestClient, settings: Settings, databases: TestDatabases, root: str,
        key: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    pause = paused(client, monkeypatch, "access", AuditAction.KEY_ROTATED)

    def rotate() -> Any:
        return client.post(f"/v1/keys/{key['id']}/rotate", json={"grace_seconds": 3600},
                           headers=auth(root))

    first, second = race(databases, settings.data_dir, pause, rotate, rotate)

    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    # The second rotation moved the first one's secret into grace, not the original's:
    # both secrets just handed out work, the original one no longer.
    for secret in (first.json()["secret"], second.json()["secret"]):
        assert client.get("/v1/jobs", headers=auth(secret)).status_code == 200
    assert client.get("/v1/jobs", headers=auth(key["secret"])).status_code == 401


def test_a_revocation_that_waited_for_another_is_audited_once(
        client: TestClient, settings: Settings, databases: TestDatabases, root: str,
        key: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    pause = paused(client, monkeypatch, "access", AuditAction.KEY_REVOKED)

    def revoke() -> Any:
        return client.delete(f"/v1/keys/{key['id']}", headers=auth(root))

    first, second = race(databases, settings.data_dir, pause, revoke, revoke)

    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    assert first.json()["revoked_at"] == second.json()["revoked_at"]
    assert key_audits(client, root, AuditAction.KEY_REVOKED, key["id"]) == 1


def test_two_first_policy_changes_at_once_both_apply(
        client: TestClient, settings: Settings, databases: TestDatabases, root: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No policy row yet: the second change waits, then changes the first's row (instead
    of inserting its own, which failed on the primary key), keeping the first's change."""
    before = client.get("/v1/retention", headers=auth(root)).json()
    pause = paused(client, monkeypatch, "retention", AuditAction.POLICY_CHANGED)

    first, second = race(
        databases, settings.data_dir, pause,
        lambda: client.patch("/v1/retention", json={"result": 3600}, headers=auth(root)),
        lambda: client.patch("/v1/retention", json={"input": 60}, headers=auth(root)))

    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    assert client.get("/v1/retention", headers=auth(root)).json() == {
        **before, "result": 3600, "input": 60}

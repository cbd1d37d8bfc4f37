"""Keys and the audit log through the API and the CLI: secrets shown once, revocation on
every node, rate limits, IP allow-lists, quotas, request ids, and audit entries that
hold who, what and where, but no content, no file names and no secrets."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ocrvault.access.keys import KEY_PATTERN
from ocrvault.api.app import create_app
from ocrvault.audit import AuditAction
from ocrvault.cli import app as cli_app
from ocrvault.config import Settings
from ocrvault.principal import RequestContext, Scope
from tests.clocks import FakeClock
from tests.conftest import assert_problem, auth, runtime_of, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, text_page
from tests.engine_fakes import BlockingEngine, FixedEngine

PNG = encode(text_page(["audit"]), "PNG")
CANARY_NAME = "payroll-canary-7f3a.png"

Maker = Callable[..., TestClient]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(make_client: Maker, settings: Settings, clock: FakeClock) -> TestClient:
    return make_client(settings, engine=FixedEngine(), clock=clock)


@pytest.fixture
def root(app: TestClient) -> str:
    return runtime_of(app).access.bootstrap_tenant("acme").secret


def make_key(app: TestClient, root: str, **body: Any) -> dict[str, Any]:
    grant = {} if "scopes" in body else {"role": "developer"}
    response = app.post("/v1/keys", json={"name": "k", **grant, **body}, headers=auth(root))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def audit_entries(app: TestClient, key: str, **params: Any) -> list[dict[str, Any]]:
    response = app.get("/v1/audit", params={"limit": 1000, **params}, headers=auth(key))
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def test_a_secret_is_shown_once_and_listings_hold_only_its_hint(app: TestClient,
                                                                root: str) -> None:
    created = make_key(app, root, scopes=["jobs:read"], expires_at="2031-01-01T00:00:00Z",
                       allowed_ips=["10.0.0.0/8"], rate_limit_per_minute=60)
    assert KEY_PATTERN.fullmatch(created["secret"])
    assert created["hint"].endswith(created["secret"][-4:])
    listing = app.get("/v1/keys", headers=auth(root))
    assert created["secret"] not in listing.text and root not in listing.text
    hints = listing.text
    for listed_key in listing.json()["keys"]:
        hints = hints.replace(listed_key["hint"], "")
    assert not KEY_PATTERN.search(hints)
    listed = next(k for k in listing.json()["keys"] if k["id"] == created["id"])
    assert listed["scopes"] == ["jobs:read"] and listed["allowed_ips"] == ["10.0.0.0/8"]
    assert listed["created_by"] == key_id_of(app, root)


def key_id_of(app: TestClient, secret: str) -> str:
    principal = runtime_of(app).access.authenticate(secret, RequestContext("t"), Scope.JOBS_READ)
    return principal.key_id


@pytest.mark.parametrize(
    "body",
    [{"name": "x"}, {"name": "x", "role": "admin", "scopes": []}, {"name": "x", "role": "root"},
     {"name": "x", "scopes": ["everything"]}, {"name": "x", "role": "admin", "allowed_ips": ["a"]},
     {"name": "x", "role": "admin", "expires_at": "2031-01-01T00:00:00"},
     {"name": "x", "role": "admin", "rate_limit_per_minute": 0}, {"name": "", "role": "admin"}],
    ids=["no-role-or-scopes", "both", "unknown-role", "unknown-scope", "bad-cidr", "naive-expiry",
         "zero-rate", "empty-name"],
)
def test_malformed_key_requests_are_400(app: TestClient, root: str, body: dict[str, Any]) -> None:
    assert_problem(app.post("/v1/keys", json=body, headers=auth(root)), 400, "invalid_parameter")


def test_rotation_grace_is_bounded(app: TestClient, root: str) -> None:
    key = make_key(app, root)
    for grace in (-1, 7 * 24 * 3600 + 1):
        response = app.post(f"/v1/keys/{key['id']}/rotate", json={"grace_seconds": grace},
                            headers=auth(root))
        assert_problem(response, 400, "invalid_parameter")
    rotated = app.post(f"/v1/keys/{key['id']}/rotate", headers=auth(root)).json()
    assert rotated["previous_secret_expires_at"] is not None and rotated["secret"] != key["secret"]


def test_revocation_is_refused_at_once_on_another_node(make_client: Maker, settings: Settings,
                                                       clock: FakeClock) -> None:
    first = make_client(settings, engine=FixedEngine(), clock=clock)
    second = make_client(settings, engine=FixedEngine(), clock=clock)  # same database
    root = runtime_of(first).access.bootstrap_tenant("acme").secret
    key = make_key(first, root)
    assert second.get("/v1/jobs/none", headers=auth(key["secret"])).status_code == 404
    assert first.delete(f"/v1/keys/{key['id']}", headers=auth(root)).status_code == 200
    assert_problem(second.get("/v1/jobs/none", headers=auth(key["secret"])), 401, "unauthorized")


def test_over_the_rate_limit_is_429_with_retry_after(app: TestClient, root: str,
                                                     clock: FakeClock) -> None:
    key = make_key(app, root, rate_limit_per_minute=2)["secret"]
    for _ in range(2):
        assert app.get("/v1/jobs/none", headers=auth(key)).status_code == 404
    limited = app.get("/v1/jobs/none", headers=auth(key))
    assert_problem(limited, 429, "rate_limited")
    assert limited.headers["retry-after"] == "30"
    clock.advance(timedelta(seconds=30))
    assert app.get("/v1/jobs/none", headers=auth(key)).status_code == 404


def test_an_ip_allow_list_admits_only_its_networks(app: TestClient, root: str) -> None:
    office = make_key(app, root, allowed_ips=["10.0.0.0/8", "2001:db8::/32"])["secret"]
    home = make_key(app, root, allowed_ips=["192.168.0.0/16"])["secret"]
    runtime = runtime_of(app)
    for address, key, status in (("10.1.2.3", office, 404), ("2001:db8::5", office, 404),
                                 ("10.1.2.3", home, 403), ("192.168.9.9", office, 403)):
        with TestClient(create_app(runtime, start=False), client=(address, 50000)) as peer:
            response = peer.get("/v1/jobs/none", headers=auth(key))
        if status == 403:
            assert_problem(response, 403, "ip_not_allowed")
        else:
            assert response.status_code == status
    assert_problem(app.get("/v1/jobs/none", headers=auth(office)), 403, "ip_not_allowed")


def test_concurrent_jobs_quota_is_429(make_client: Maker, settings: Settings) -> None:
    engine = BlockingEngine()
    app = make_client(settings, engine=engine)
    root = runtime_of(app).access.bootstrap_tenant("acme").secret
    key = make_key(app, root, max_concurrent_jobs=1)["secret"]
    try:
        first = app.post("/v1/read", content=PNG, headers=auth(key))
        assert first.status_code == 202
        assert engine.started.wait(30)
        assert_problem(app.post("/v1/read", content=PNG, headers=auth(key)), 429,
                       "quota_exceeded")
        assert app.post("/v1/read", content=PNG, headers=auth(root)).status_code == 202
    finally:
        engine.release.set()
    wait_for_job(app, first.json()["id"], key)
    assert app.post("/v1/read", content=PNG, headers=auth(key)).status_code == 202


def test_pages_per_day_quota_is_429_until_the_next_utc_day(app: TestClient, root: str,
                                                           clock: FakeClock) -> None:
    key = make_key(app, root, max_pages_per_day=2)["secret"]
    for route in ("/v1/read:sync", "/v1/read"):
        assert app.post(route, content=PNG, headers=auth(key)).status_code in (200, 202)
    over = app.post("/v1/read:sync", content=PNG, headers=auth(key))
    assert_problem(over, 429, "quota_exceeded")
    assert over.headers["retry-after"] == str(12 * 3600)  # the clock reads noon UTC
    clock.advance(timedelta(hours=12))
    assert app.post("/v1/read:sync", content=PNG, headers=auth(key)).status_code == 200


def test_the_request_id_is_echoed_or_made(app: TestClient, root: str) -> None:
    sent = app.get("/v1/jobs/none", headers={**auth(root), "X-Request-Id": "client-42"})
    assert sent.headers["x-request-id"] == "client-42"
    made = app.get("/healthz").headers["x-request-id"]
    injected = app.get("/healthz", headers={"X-Request-Id": "a\tb" + "c" * 200})
    assert len(made) == 32 and injected.headers["x-request-id"] not in ("a\tb", "")
    assert len(injected.headers["x-request-id"]) == 32


def test_every_flow_is_audited_with_actor_target_address_and_request_id(
    app: TestClient, root: str, clock: FakeClock,
) -> None:
    runtime = runtime_of(app)
    headers = {**auth(root), "X-Request-Id": "flow-1"}
    job = app.post("/v1/read?outputs=text", headers=headers,
                   files={"file": (CANARY_NAME, PNG, "image/png")}).json()["id"]
    wait_for_job(app, job, root)
    app.get(f"/v1/jobs/{job}/outputs/text", headers=headers)
    app.delete(f"/v1/jobs/{job}", headers=headers)
    app.post("/v1/read:sync", content=PNG, headers=headers)
    expiring = app.post("/v1/read", content=PNG, headers=auth(root)).json()["id"]
    wait_for_job(app, expiring, root)
    clock.advance(timedelta(days=2))
    runtime.reaper.run_once()
    app.get("/v1/jobs/none", headers={**auth(root[:-1] + "x"), "X-Request-Id": "bad-key"})

    entries = audit_entries(app, root)
    root_id = key_id_of(app, root)
    actions = [(e["action"], e["target_id"]) for e in entries]
    for action in (AuditAction.JOB_SUBMITTED, AuditAction.JOB_PROCESSED,
                   AuditAction.JOB_RESULT_READ, AuditAction.JOB_OUTPUT_READ,
                   AuditAction.JOB_DELETED):
        assert (action.value, job) in actions
    assert (AuditAction.JOB_EXPIRED.value, expiring) in actions
    assert (AuditAction.JOB_READ_SYNC.value, None) in actions
    deleted = next(e for e in entries if e["action"] == AuditAction.JOB_DELETED)
    assert deleted["actor_key_id"] == root_id and deleted["actor_name"] == "acme admin"
    assert deleted["client_ip"] == "testclient" and deleted["request_id"] == "flow-1"
    assert deleted["outcome"] == "success"
    expired = next(e for e in entries if e["action"] == AuditAction.JOB_EXPIRED)
    assert expired["actor_name"] == "system:reaper" and expired["actor_key_id"] is None


def test_audit_entries_hold_no_content_file_names_or_secrets(
    app: TestClient, root: str, monkeypatch: pytest.MonkeyPatch, settings: Settings,
    databases: TestDatabases,
) -> None:
    key = make_key(app, root)
    job = app.post("/v1/read", headers=auth(root),
                   files={"file": (CANARY_NAME, PNG, "image/png")}).json()["id"]
    wait_for_job(app, job, root)
    app.post(f"/v1/keys/{key['id']}/rotate", headers=auth(root))
    app.get("/v1/jobs/x", headers=auth(key["secret"][:-1] + "x"))
    for name, value in databases.env(settings.data_dir).items():
        monkeypatch.setenv(name, value)
    exported = CliRunner().invoke(cli_app, ["audit", "export", "--format", "jsonl"]).output
    assert len(exported.splitlines()) >= 8
    for secret in (root, key["secret"]):
        assert secret not in exported and secret[9:-6] not in exported
    for content in (CANARY_NAME, "payroll", "Invoice 42", "Total 9.99"):
        assert content not in exported


def test_audit_listing_filters_and_pages_by_cursor(app: TestClient, root: str) -> None:
    made = [make_key(app, root, name=f"k{n}")["id"] for n in range(5)]
    first = app.get("/v1/audit", params={"action": "key:api_key:created", "limit": 2},
                    headers=auth(root)).json()
    seen, cursor = [e["target_id"] for e in first["entries"]], first["next_cursor"]
    while cursor:
        page = app.get("/v1/audit", params={"action": "key:api_key:created", "limit": 2,
                                            "cursor": cursor}, headers=auth(root)).json()
        seen += [e["target_id"] for e in page["entries"]]
        cursor = page["next_cursor"]
    assert seen[-5:] == made and len(seen) == 6  # the admin key's own creation first
    by_target = audit_entries(app, root, target=made[2])
    assert [e["action"] for e in by_target] == ["key:api_key:created"]
    root_id = by_target[0]["actor_key_id"]
    assert all(e["actor_key_id"] == root_id for e in audit_entries(app, root, actor=root_id))
    assert audit_entries(app, root, since="2031-01-01T00:00:00Z") == []
    assert len(audit_entries(app, root, until="2031-01-01T00:00:00Z")) >= 6
    assert_problem(app.get("/v1/audit", params={"action": "job:ate"}, headers=auth(root)), 400,
                   "invalid_parameter")
    other = runtime_of(app).access.bootstrap_tenant("globex").secret
    foreign = app.get("/v1/audit", params={"cursor": first["next_cursor"]}, headers=auth(other))
    assert_problem(foreign, 400, "invalid_parameter")
    reads = [e for e in audit_entries(app, root) if e["action"] == AuditAction.AUDIT_READ]
    assert len(reads) == 5  # the five listings started without a cursor; paging adds none


def test_cli_creates_tenants_verifies_and_exports_the_log(databases: TestDatabases,
                                                         tmp_path: Path) -> None:
    env = databases.env(tmp_path / "data")
    cli = CliRunner()
    created = cli.invoke(cli_app, ["admin", "create-tenant", "initech", "--print", "--create"],
                         env=env)
    assert created.exit_code == 0, created.output
    assert len(KEY_PATTERN.findall(created.output)) == 1
    again = cli.invoke(cli_app, ["admin", "create-tenant", "initech"], env=env)
    assert again.exit_code == 2 and "exists" in again.output
    verified = cli.invoke(cli_app, ["audit", "verify"], env=env)
    assert verified.exit_code == 0 and "intact, 2 entries" in verified.output, verified.output
    exported = cli.invoke(cli_app, ["audit", "export", "--tenant", "initech"], env=env)
    lines = [json.loads(line) for line in exported.output.splitlines()]
    assert [line["action"] for line in lines] == ["tenant:tenant:created", "key:api_key:created",
                                                  "audit:log:exported"]
    assert lines[1]["prev_hash"] == lines[0]["hash"]

    databases.execute(tmp_path / "data", "UPDATE audit_entries SET actor_name = 'nobody' "
                      "WHERE chain LIKE 'tenant:%' AND pos = 2")
    tampered = cli.invoke(cli_app, ["audit", "verify"], env=env)
    assert tampered.exit_code == 1 and "entry 2 was changed" in tampered.output

"""Retention per kind of data, deletion you can prove, with a clock moved by hand."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import text

from ocrvault.audit import Actor
from ocrvault.audit.events import AuditAction
from ocrvault.config import Settings
from ocrvault.environments import Environment
from ocrvault.model import JobStatus
from ocrvault.principal import Role
from ocrvault.retention.shredder import Shredder
from ocrvault.store.blobs import LocalBlobStore
from ocrvault.store.commands import TombstoneJob
from ocrvault.store.repository import JobRepository
from tests.clocks import FakeClock
from tests.conftest import assert_problem, auth, runtime_of, wait_for_job
from tests.databases import ON_POSTGRES, TestDatabases
from tests.docgen import canary as make_canary
from tests.docgen import encode, text_page
from tests.races import wait_until_blocked

PAGE = encode(text_page(["Retention test page"], size=(900, 200)), "PNG")
POLICY = {"input": 600, "result": 3600, "outputs": 7200, "job_metadata": 86400,
          "failed_inputs": 0}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(make_client: Callable[..., TestClient], settings: Settings,
        clock: FakeClock) -> TestClient:
    return make_client(settings, clock=clock)


@pytest.fixture
def key(app: TestClient) -> str:
    return runtime_of(app).access.bootstrap_tenant("acme").secret


def reap(app: TestClient) -> int:
    return runtime_of(app).reaper.run_once()


def when(value: object) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def blobs_of(settings: Settings, job_id: str) -> set[str]:
    return {p.name for p in settings.blob_dir.rglob("*") if p.is_file() and p.parent.name == job_id}


def submitted(app: TestClient, key: str, **params: str) -> str:
    response = app.post("/v1/read", content=PAGE, headers=auth(key),
                        params={"outputs": "text", **params})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    wait_for_job(app, job_id, key)
    return job_id


def test_each_kind_expires_at_its_own_time_and_not_before(
    app: TestClient, key: str, clock: FakeClock, settings: Settings
) -> None:
    assert app.put("/v1/retention", json=POLICY, headers=auth(key)).json() == {
        **POLICY, "environment": "live"}
    job_id = submitted(app, key)
    job = app.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
    completed = job["completed_at"]
    assert job["expires"]["result"] > completed and job["expired"] == []
    assert blobs_of(settings, job_id) == {"input", "result", "output-text"}

    def at(seconds: int) -> tuple[set[str], dict[str, object]]:
        clock.now = when(job["completed_at"]) + timedelta(seconds=seconds)
        reap(app)
        return blobs_of(settings, job_id), app.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()

    stored, body = at(599)
    assert stored == {"input", "result", "output-text"} and body["result"] is not None
    stored, body = at(600)
    assert stored == {"result", "output-text"} and body["expired"] == ["input"]
    stored, body = at(3599)
    assert body["result"]["text"] == "Retention test page"
    stored, body = at(3600)
    assert stored == {"output-text"}
    assert body["result"] is None and body["expired"] == ["input", "result"]
    assert app.get(f"/v1/jobs/{job_id}/outputs/text", headers=auth(key)).text
    stored, body = at(7200)
    assert stored == set()
    assert_problem(app.get(f"/v1/jobs/{job_id}/outputs/text", headers=auth(key)), 410,
                   "data_expired")
    assert body["status"] == "succeeded"  # the content-free metadata is still kept
    at(86399)
    assert app.get(f"/v1/jobs/{job_id}", headers=auth(key)).status_code == 200
    at(86400)
    assert_problem(app.get(f"/v1/jobs/{job_id}", headers=auth(key)), 404, "job_not_found")


def test_the_api_hides_an_expired_part_even_before_the_reaper_runs(
    app: TestClient, key: str, clock: FakeClock
) -> None:
    job_id = submitted(app, key)
    clock.advance(timedelta(hours=24, seconds=1))  # default result retention: 24 h
    body = app.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
    assert body["result"] is None and "result" in body["expired"]
    assert_problem(app.get(f"/v1/jobs/{job_id}/outputs/text", headers=auth(key)), 410,
                   "data_expired")


def test_the_default_policy_deletes_the_input_when_the_job_finishes(
    app: TestClient, key: str, settings: Settings
) -> None:
    job_id = submitted(app, key)
    assert "input" not in blobs_of(settings, job_id)
    assert app.get("/v1/retention", headers=auth(key)).json() == {
        "input": 0, "result": 86400, "outputs": 86400, "job_metadata": 2592000,
        "failed_inputs": 0, "environment": "live"}


def test_a_request_may_shorten_retention_but_never_lengthen_it(
    app: TestClient, key: str, clock: FakeClock, settings: Settings
) -> None:
    job_id = submitted(app, key, retention="PT1H")
    body = app.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
    assert body["expires"]["result"] == body["expires"]["outputs"]
    clock.advance(timedelta(hours=1))
    reap(app)
    assert blobs_of(settings, job_id) == set()

    for too_long in ("P2D", "172800"):
        response = app.post("/v1/read", content=PAGE, headers=auth(key),
                            params={"retention": too_long})
        assert_problem(response, 400, "retention_exceeds_policy")
    assert_problem(app.post("/v1/read", content=PAGE, headers=auth(key),
                            params={"retention": "soon"}), 400, "invalid_parameter")


def test_a_key_override_beats_the_tenant_policy(app: TestClient, key: str,
                                                settings: Settings) -> None:
    runtime = runtime_of(app)
    tenant = runtime.access.bootstrap_tenant("acme").tenant_id
    onboarding = runtime.access.issue_key(tenant, "id onboarding", Role.DEVELOPER)
    keep_nothing = {"input": 0, "result": 0, "outputs": 0, "job_metadata": 60,
                    "failed_inputs": 0}
    response = app.put(f"/v1/keys/{onboarding.key_id}/retention", json=keep_nothing,
                       headers=auth(key))
    assert response.status_code == 200, response.text

    job_id = submitted(app, onboarding.secret)

    reap(app)
    assert blobs_of(settings, job_id) == set()
    assert app.get(f"/v1/jobs/{job_id}", headers=auth(onboarding.secret)).json()["result"] is None
    assert app.get(f"/v1/keys/{onboarding.key_id}/retention",
                   headers=auth(key)).json() == {**keep_nothing, "environment": "live"}
    assert app.get("/v1/retention", headers=auth(key)).json()["result"] == 86400


def test_policy_changes_need_the_scope_are_validated_and_audited(app: TestClient,
                                                                 key: str) -> None:
    runtime = runtime_of(app)
    tenant = runtime.access.bootstrap_tenant("acme").tenant_id
    developer = runtime.access.issue_key(tenant, "dev", Role.DEVELOPER).secret
    assert_problem(app.put("/v1/retention", json=POLICY, headers=auth(developer)), 403,
                   "insufficient_scope")
    shorter_metadata = {**POLICY, "job_metadata": 60}
    assert_problem(app.put("/v1/retention", json=shorter_metadata, headers=auth(key)), 400,
                   "invalid_parameter")

    assert app.put("/v1/retention", json=POLICY, headers=auth(key)).status_code == 200

    entries = app.get("/v1/audit", params={"action": "policy:retention:changed"},
                      headers=auth(key)).json()["entries"]
    assert len(entries) == 1
    assert entries[0]["target_id"] == "retention:tenant"
    assert '"new":{"failed_inputs":0,"input":600' in entries[0]["detail"]
    assert '"old":{"failed_inputs":0,"input":0' in entries[0]["detail"]
    assert '"environment":"live"' in entries[0]["detail"]


YEAR = 365 * 86400


def test_a_test_key_sets_the_test_policy_only(app: TestClient, key: str) -> None:
    runtime = runtime_of(app)
    tenant = runtime.access.bootstrap_tenant("acme").tenant_id
    test_key = runtime.access.issue_key(tenant, "sandbox", Role.ADMIN, Environment.TEST).secret
    a_year = {"input": YEAR, "result": YEAR, "outputs": YEAR, "job_metadata": YEAR,
              "failed_inputs": YEAR}
    answer = app.put("/v1/retention", json=a_year, headers=auth(test_key))
    assert answer.status_code == 200, answer.text

    # The live policy is untouched, and a live upload follows it.
    assert app.get("/v1/retention", headers=auth(key)).json()["result"] == 86400
    job_id = submitted(app, key)
    body = app.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
    assert when(body["expires"]["result"]) == when(body["completed_at"]) + timedelta(days=1)

    assert answer.json() == {**a_year, "environment": "test"}
    assert_problem(app.put("/v1/retention", json=a_year, headers=auth(test_key),
                           params={"environment": "live"}), 403, "forbidden")
    assert_problem(app.get("/v1/retention", headers=auth(test_key),
                           params={"environment": "live"}), 403, "forbidden")
    # A live admin administers test too, when it names it.
    assert app.get("/v1/retention", headers=auth(key),
                   params={"environment": "test"}).json()["result"] == YEAR


def test_test_mode_data_never_outlives_one_hour(app: TestClient, clock: FakeClock,
                                                settings: Settings) -> None:
    runtime = runtime_of(app)
    tenant = runtime.access.bootstrap_tenant("acme").tenant_id
    test_key = runtime.access.issue_key(tenant, "sandbox", Role.ADMIN, Environment.TEST).secret
    app.put("/v1/retention", json={**POLICY, "result": 86400, "outputs": 86400},
            headers=auth(test_key))
    job_id = submitted(app, test_key)
    body = app.get(f"/v1/jobs/{job_id}", headers=auth(test_key)).json()
    created = when(body["created_at"])
    for part in ("input", "result", "outputs", "job_metadata"):
        assert when(body["expires"][part]) <= created + timedelta(hours=1)

    clock.now = created + timedelta(hours=1)
    reap(app)

    assert blobs_of(settings, job_id) == set()
    assert_problem(app.get(f"/v1/jobs/{job_id}", headers=auth(test_key)), 404, "job_not_found")


def test_bulk_delete_removes_only_matching_jobs_of_the_caller(app: TestClient, key: str,
                                                              clock: FakeClock) -> None:
    old = submitted(app, key)
    clock.advance(timedelta(minutes=5))
    cutoff = clock.now
    clock.advance(timedelta(minutes=5))
    new = submitted(app, key)
    other = runtime_of(app).access.bootstrap_tenant("other").secret
    foreign = submitted(app, other)

    response = app.delete("/v1/jobs", headers=auth(key),
                          params={"before": cutoff.isoformat(), "status": "succeeded"})

    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": 1, "ids": [old]}
    assert_problem(app.get(f"/v1/jobs/{old}", headers=auth(key)), 410, "job_deleted")
    assert app.get(f"/v1/jobs/{new}", headers=auth(key)).status_code == 200
    assert app.get(f"/v1/jobs/{foreign}", headers=auth(other)).status_code == 200


def test_reaper_lag_is_exported_as_a_metric(app: TestClient, key: str,
                                            clock: FakeClock) -> None:
    jobs_before = REGISTRY.get_sample_value("ocrvault_reaper_jobs_total") or 0.0
    submitted(app, key, retention="60")
    clock.advance(timedelta(seconds=75))
    reap(app)
    assert REGISTRY.get_sample_value("ocrvault_reaper_lag_seconds") == 15.0
    assert REGISTRY.get_sample_value("ocrvault_reaper_jobs_total") == jobs_before + 1
    assert (REGISTRY.get_sample_value("ocrvault_reaper_last_run_timestamp_seconds") or 0) > 0


class CrashingBlobs(LocalBlobStore):
    """A blob store that dies on its next deletion, before or after doing it."""

    crash: str | None = None

    def delete_prefix(self, prefix: str) -> None:
        if self.crash == "after":
            super().delete_prefix(prefix)
        if self.crash:
            raise RuntimeError("injected crash")
        super().delete_prefix(prefix)


class FailingAudit:
    """An audit sink that fails: the tombstone transaction dies before it commits."""

    def record(self, *_args: object, **_kwargs: object) -> None:
        raise RuntimeError("injected crash")


@pytest.mark.parametrize("crash", ["before", "after"])
def test_a_crash_mid_deletion_leaves_the_job_gone_and_a_restart_finishes_it(
    databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path, crash: str
) -> None:
    settings = databases.settings(tmp_path / "data", workers=1, reaper_interval_seconds=3600)
    blobs = CrashingBlobs(settings.blob_dir)
    app = make_client(settings, blobs=blobs)
    key = runtime_of(app).access.bootstrap_tenant("acme").secret
    job_id = submitted(app, key)
    assert blobs_of(settings, job_id)

    blobs.crash = crash  # the blobs' deletion, after the key was destroyed
    with pytest.raises(RuntimeError, match="injected crash"):
        runtime_of(app).jobs.shredder.purge(job_id, Actor.system("test"))

    assert_problem(app.get(f"/v1/jobs/{job_id}", headers=auth(key)), 410, "job_deleted")
    with runtime_of(app).db.transaction() as session:
        row = JobRepository(session).by_id(job_id)
        assert row is not None and row.wrapped_dek is None and row.stored_objects
    app.__exit__(None, None, None)

    restarted = make_client(settings)
    reap(restarted)
    assert blobs_of(settings, job_id) == set()
    with runtime_of(restarted).db.transaction() as session:
        row = JobRepository(session).by_id(job_id)
        assert row is not None and row.stored_objects == ()
    assert_problem(restarted.get(f"/v1/jobs/{job_id}", headers=auth(key)), 410, "job_deleted")


def test_a_crash_before_the_key_is_destroyed_leaves_the_job_whole(
    app: TestClient, key: str, settings: Settings
) -> None:
    job_id = submitted(app, key)
    runtime = runtime_of(app)
    dying = Shredder(runtime.db, runtime.documents, runtime.clock, FailingAudit())

    with pytest.raises(RuntimeError, match="injected crash"):
        dying.purge(job_id, Actor.system("test"))

    body = app.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
    assert body["result"]["text"] == "Retention test page"
    assert blobs_of(settings, job_id) == {"result", "output-text"}


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite has one writer: it refuses the second "
                    "deleter's write instead of interleaving it")
def test_a_deletion_that_waits_for_another_keeps_its_tombstone_and_is_audited_once(
    app: TestClient, key: str, settings: Settings, databases: TestDatabases
) -> None:
    job_id = submitted(app, key)
    runtime = runtime_of(app)
    first_deleted_at = datetime(2001, 2, 3, tzinfo=UTC)
    receipts: list[object] = []
    second = threading.Thread(target=lambda: receipts.append(
        runtime.jobs.shredder.purge(job_id, Actor.system("test"))))
    with runtime.db.transaction() as session:  # the first deletion, before it commits
        jobs = JobRepository(session)
        assert jobs.by_id(job_id, lock=True) is not None
        holder = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        second.start()
        wait_until_blocked(databases, settings.data_dir, holder)
        jobs.tombstone(TombstoneJob(job_id, deleted_at=first_deleted_at,
                                    metadata_expires_at=first_deleted_at + timedelta(days=1),
                                    next_expiry_at=first_deleted_at))
    second.join(timeout=60)

    assert len(receipts) == 1
    with runtime.db.transaction() as session:
        row = JobRepository(session).by_id(job_id)
        assert row is not None and row.deleted_at == first_deleted_at
        assert row.wrapped_dek is None and row.status == JobStatus.DELETED
    assert databases.execute(settings.data_dir, "SELECT seq FROM audit_entries WHERE "
                             "action = :action AND target_id = :job",
                             action=AuditAction.JOB_DELETED.value, job=job_id) == []


def test_a_deleted_canary_leaves_nothing_in_the_data_dir_sqlite_file_included(
    app: TestClient, key: str, settings: Settings, databases: TestDatabases
) -> None:
    """secure_delete plus a WAL checkpoint: not even the destroyed wrapped key stays.

    On PostgreSQL the database is not in the data dir: no live row may hold the wrapped
    key; its dead tuple lasts until VACUUM (docs/security.md, crypto-shredding on
    PostgreSQL), which is the operator's to schedule, not the app's to prove."""
    canary = make_canary()
    page = encode(text_page([f"Canary {canary}"], size=(1200, 200)), "PNG")
    job_id = app.post("/v1/read", content=page, headers=auth(key)).json()["id"]
    assert canary in wait_for_job(app, job_id, key)["result"]["text"]
    with runtime_of(app).db.transaction() as session:
        row = JobRepository(session).by_id(job_id)
        assert row is not None and row.wrapped_dek is not None
        wrapped = row.wrapped_dek
    sealed = [p.read_bytes()[-64:] for p in settings.blob_dir.rglob("*") if p.is_file()]

    assert app.delete(f"/v1/jobs/{job_id}", headers=auth(key)).status_code == 200

    everything = b"".join(p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file())
    assert canary.encode() not in everything
    assert wrapped not in everything
    assert not any(tail in everything for tail in sealed)
    assert databases.execute(settings.data_dir, "SELECT id FROM jobs WHERE wrapped_dek = :w "
                             "OR customer_wrapped_dek = :w", w=wrapped) == []


def test_a_policy_change_is_partial_and_takes_iso_8601_durations(app: TestClient,
                                                                 key: str) -> None:
    """PUT and PATCH change the kinds given; the others keep their value (issue 12)."""
    before = app.get("/v1/retention", headers=auth(key)).json()

    put = app.put("/v1/retention", json={"result": "PT1H"}, headers=auth(key))
    assert put.status_code == 200, put.text
    assert put.json() == {**before, "result": 3600}
    patched = app.patch("/v1/retention", json={"outputs": "P1DT30M", "input": 60},
                        headers=auth(key))
    assert patched.status_code == 200, patched.text
    assert patched.json() == {**before, "result": 3600, "outputs": 86400 + 1800, "input": 60}
    assert app.get("/v1/retention", headers=auth(key)).json() == patched.json()

    for bad in ({"result": "P1Y"}, {"result": "one hour"}, {"result": True}, {"result": ""},
                {"result": "P99999D"}, {"resutl": 60}, {"job_metadata": "PT1M"},
                {"result": None}):
        assert_problem(app.patch("/v1/retention", json=bad, headers=auth(key)), 400,
                       "invalid_parameter")
    assert app.get("/v1/retention", headers=auth(key)).json() == patched.json()


def test_a_key_override_is_partial_over_the_policy_its_jobs_get_now(app: TestClient,
                                                                   key: str) -> None:
    runtime = runtime_of(app)
    tenant = runtime.access.bootstrap_tenant("acme").tenant_id
    onboarding = runtime.access.issue_key(tenant, "onboarding", Role.DEVELOPER)
    assert app.put("/v1/retention", json=POLICY, headers=auth(key)).status_code == 200

    response = app.patch(f"/v1/keys/{onboarding.key_id}/retention", json={"result": "PT10M"},
                         headers=auth(key))
    assert response.status_code == 200, response.text
    assert response.json() == {**POLICY, "result": 600, "environment": "live"}
    response = app.put(f"/v1/keys/{onboarding.key_id}/retention", json={"outputs": 0},
                       headers=auth(key))
    assert response.json() == {**POLICY, "result": 600, "outputs": 0, "environment": "live"}

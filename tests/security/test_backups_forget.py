"""Deleted means deleted, in backups too: a backup holds the database and the sealed blobs,
never a key, and epoch keys are destroyed once nothing under them may live, so a restored
backup cannot open what was deleted or has expired since it was taken."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ocrvault.cli import app as cli_app
from ocrvault.errors import IntegrityError
from ocrvault.jobs.service import key_of
from ocrvault.store.documents import ObjectKind
from ocrvault.store.repository import JobRepository
from tests.clocks import FakeClock
from tests.conftest import auth, issue, runtime_of, wait_for_job
from tests.databases import ON_POSTGRES, TestDatabases
from tests.docgen import encode, text_page

PAGE = encode(text_page(["kept apart from its keys"], size=(700, 200)), "PNG")
HOUR = 3600


def submitted(client: TestClient, key: str, **params: str) -> str:
    response = client.post("/v1/read", content=PAGE, headers=auth(key), params=params)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    wait_for_job(client, job_id, key)
    return job_id


@pytest.mark.skipif(ON_POSTGRES, reason="`ocrvault backup` copies the SQLite file; on "
                    "PostgreSQL the operator's pg_dump takes the database (docs/deploy.md)")
def test_a_restored_backup_cannot_open_what_was_deleted_or_expired_since(
        databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    clock = FakeClock()
    data_dir = tmp_path / "data"
    settings = databases.settings(data_dir, workers=1, epoch_seconds=HOUR,
                                  reaper_interval_seconds=3600)
    client = make_client(settings, clock=clock)
    key = issue(client, "acme")
    deleted = submitted(client, key, retention="60")
    expired = submitted(client, key, retention="60")
    kept = submitted(client, key)  # the default policy: a day
    cli, env = CliRunner(), databases.env(data_dir)

    backup = tmp_path / "backup"
    made = cli.invoke(cli_app, ["backup", "create", str(backup)], env=env)
    assert made.exit_code == 0, made.output
    copied = {p.relative_to(backup).parts[0] for p in backup.rglob("*") if p.is_file()}
    assert copied == {"ocrvault.db", "blobs", "ocrvault-backup.json"}  # no keyring, no keys
    assert not list(backup.rglob("keyring*")) and not (backup / "keys").exists()

    assert client.delete(f"/v1/jobs/{deleted}", headers=auth(key)).status_code in (200, 204)
    clock.advance(timedelta(seconds=60 + 2 * HOUR))  # retention plus more than one window
    runtime = runtime_of(client)
    runtime.scheduler.tick()  # the reaper, then the epoch keys

    restored = cli.invoke(cli_app, ["backup", "restore", str(backup)], env=env)
    assert restored.exit_code == 0, restored.output
    with runtime.db.transaction() as session:
        rows = {job_id: JobRepository(session).by_id(job_id)
                for job_id in (deleted, expired, kept)}
    for job_id in (deleted, expired):
        row = rows[job_id]
        assert row is not None and row.wrapped_dek is not None  # the backup kept the DEK...
        with pytest.raises(IntegrityError):  # ...but its epoch key is gone
            runtime.documents.get(key_of(row), ObjectKind.RESULT)
    kept_row = rows[kept]
    assert kept_row is not None
    assert b"kept apart" in runtime.documents.get(key_of(kept_row), ObjectKind.RESULT)
    assert "kept apart" in client.get(f"/v1/jobs/{kept}", headers=auth(key)).text

    verified = cli.invoke(cli_app, ["audit", "verify"], env=env)
    assert verified.exit_code == 0, verified.output


def test_an_epoch_key_outlives_its_window_while_a_job_under_it_still_holds_content(
        databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    clock = FakeClock()
    settings = databases.settings(tmp_path / "data", workers=1, epoch_seconds=HOUR,
                                  reaper_interval_seconds=3600)
    client = make_client(settings, clock=clock)
    key = issue(client, "acme")
    job_id = submitted(client, key, retention="60")
    runtime = runtime_of(client)
    tenant_keys = runtime.documents.tenant_keys
    assert tenant_keys is not None
    (tenant_id,) = tenant_keys.tenants()
    (epoch,) = tenant_keys.epochs(tenant_id)
    runtime.scheduler.tick()
    assert tenant_keys.epochs(tenant_id) == [epoch]  # its window has not ended
    clock.advance(timedelta(seconds=2 * HOUR))
    runtime.scheduler.tick()
    assert tenant_keys.epochs(tenant_id) == []
    with runtime.db.transaction() as session:
        assert JobRepository(session).by_id(job_id) is not None

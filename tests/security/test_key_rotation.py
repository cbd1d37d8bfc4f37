"""Master key rotation: rotate, rewrap every data key, retire the old version, data still opens."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ocrvault.audit import AuditAction
from ocrvault.cli import app as cli_app
from ocrvault.jobs.service import key_of
from ocrvault.store.documents import ObjectKind
from ocrvault.store.repository import JobRepository
from tests.conftest import auth, issue, runtime_of
from tests.databases import TestDatabases
from tests.docgen import encode, text_page


def test_rotate_rewrap_retire_keeps_every_job_readable(
    databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    client = make_client(databases.settings(data_dir, workers=0))
    key = issue(client, "acme")
    body = encode(text_page(["rotate me"], size=(600, 200)), "PNG")
    job_ids = [client.post("/v1/read", content=body, headers=auth(key)).json()["id"]
               for _ in range(3)]
    client.delete(f"/v1/jobs/{job_ids[2]}", headers=auth(key))
    cli = CliRunner()
    env = databases.env(data_dir)

    assert cli.invoke(cli_app, ["keys", "rotate-master"], env=env).exit_code == 0
    refused = cli.invoke(cli_app, ["keys", "retire", "1"], env=env)
    assert refused.exit_code == 1 and "2 data keys are still wrapped under v1" in refused.output

    rewrap = cli.invoke(cli_app, ["keys", "rewrap", "--batch", "1"], env=env)
    assert rewrap.exit_code == 0, rewrap.output
    assert "2 data keys now wrapped under v2" in rewrap.output
    retire = cli.invoke(cli_app, ["keys", "retire", "1"], env=env)
    assert retire.exit_code == 0, retire.output
    status = cli.invoke(cli_app, ["keys", "status"], env=env)
    assert status.exit_code == 0, status.output
    assert status.output.splitlines() == [
        f"master key: keyring, key {data_dir / 'keyring.json'}, primary v2, versions v2",
        "keyring v2 (primary): 2 data keys",
        f"tenant keys: 1 tenants (0 under their own KMS key), 1 epoch keys, 0 offboarded; "
        f"in {data_dir / 'keys'}"]

    runtime = runtime_of(client)  # loaded v1 and v2 before: must follow the file's new state
    with runtime.db.transaction() as session:
        rows = [JobRepository(session).by_id(job_id) for job_id in job_ids[:2]]
    for row in rows:
        assert row is not None and row.master_key_version == 2
        assert runtime.documents.get(key_of(row), ObjectKind.INPUT) == body
    assert cli.invoke(cli_app, ["keys", "retire", "2"], env=env).exit_code != 0  # the primary


def test_the_audit_log_verifies_after_its_signing_version_is_retired(
        databases: TestDatabases, tmp_path: Path) -> None:
    """Entries signed under v1 still verify once v1 is retired (its audit MAC key is kept),
    and tampering with one of them is still caught."""
    env = databases.env(tmp_path / "data")
    cli = CliRunner()
    made = cli.invoke(cli_app, ["admin", "create-tenant", "initech", "--create"], env=env)
    assert made.exit_code == 0, made.output
    for step in (["keys", "rotate-master"], ["keys", "rewrap"], ["keys", "retire", "1"]):
        done = cli.invoke(cli_app, step, env=env)
        assert done.exit_code == 0, done.output

    verified = cli.invoke(cli_app, ["audit", "verify"], env=env)
    assert verified.exit_code == 0, verified.output
    assert "intact, 2 entries" in verified.output  # the tenant's chain: tenant, key
    # the deployment chain: the tenant chain's opening, then rotate, rewrap, retire
    assert "deployment: intact, 4 entries" in verified.output
    exported = cli.invoke(cli_app, ["audit", "export"], env=env).output
    actions = [json.loads(line)["action"] for line in exported.splitlines()]
    assert actions[1:4] == [AuditAction.MASTER_KEY_ROTATED, AuditAction.MASTER_KEY_REWRAPPED,
                            AuditAction.MASTER_KEY_RETIRED]

    data_dir = tmp_path / "data"
    assert databases.execute(data_dir, "SELECT mac_version FROM audit_entries WHERE seq = 1"
                             ) == [(1,)]
    databases.execute(data_dir, "UPDATE audit_entries SET actor_name = 'nobody' WHERE seq = 1")
    tampered = cli.invoke(cli_app, ["audit", "verify"], env=env)
    assert tampered.exit_code == 1 and "entry 1 was changed" in tampered.output


@pytest.mark.parametrize(("version", "says"), [
    ("2", "error invalid_parameter: master key v2 is the primary and cannot be retired"),
    ("7", "error invalid_parameter: there is no master key v7; the keyring holds v1, v2"),
    ("1", "error invalid_parameter: master key v1 is already retired"),
])
def test_retiring_the_primary_an_unknown_or_a_retired_version_says_so_on_one_line(
        databases: TestDatabases, tmp_path: Path, version: str, says: str) -> None:
    env = databases.env(tmp_path / "data")
    cli = CliRunner()
    assert cli.invoke(cli_app, ["keys", "rotate-master"], env=env).exit_code == 0
    if version == "1":
        assert cli.invoke(cli_app, ["keys", "retire", "1"], env=env).exit_code == 0
    refused = cli.invoke(cli_app, ["keys", "retire", version], env=env)
    assert refused.exit_code == 2
    assert refused.output.count("\n") == 1 and refused.output.startswith(says), refused.output
    assert "internal_error" not in refused.output


def test_a_data_key_wrapped_before_tenant_keys_still_opens_and_rewrap_moves_it(
        databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    """Rows from before migration 0009 hold the keyring's own wrap (``OCK``): they open as
    they are, and `keys rewrap` moves them under their tenant's epoch key."""
    data_dir = tmp_path / "data"
    client = make_client(databases.settings(data_dir, workers=0))
    key = issue(client, "acme")
    body = encode(text_page(["from before"], size=(600, 200)), "PNG")
    job_id = client.post("/v1/read", content=body, headers=auth(key)).json()["id"]
    runtime = runtime_of(client)
    tenant_keys = runtime.documents.tenant_keys
    assert tenant_keys is not None
    with runtime.db.transaction() as session:
        row = JobRepository(session).by_id(job_id)
    assert row is not None and row.wrapped_dek is not None
    dek = tenant_keys.unwrap_dek(row.wrapped_dek, row.tenant_id, job_id)
    legacy = runtime.keyring.wrap_dek(dek, row.tenant_id, job_id)
    databases.execute(data_dir, "UPDATE jobs SET wrapped_dek = :dek, key_epoch = NULL "
                      "WHERE id = :job", dek=legacy, job=job_id)

    with runtime.db.transaction() as session:
        old = JobRepository(session).by_id(job_id)
    assert old is not None and old.wrapped_dek == legacy
    assert runtime.documents.get(key_of(old), ObjectKind.INPUT) == body

    rewrap = CliRunner().invoke(cli_app, ["keys", "rewrap"], env=databases.env(data_dir))
    assert rewrap.exit_code == 0 and "1 data keys now wrapped under v1" in rewrap.output
    with runtime.db.transaction() as session:
        moved = JobRepository(session).by_id(job_id)
    assert moved is not None and moved.wrapped_dek is not None
    assert moved.wrapped_dek.startswith(b"OCE") and moved.wrapped_dek != row.wrapped_dek
    assert runtime.documents.get(key_of(moved), ObjectKind.INPUT) == body

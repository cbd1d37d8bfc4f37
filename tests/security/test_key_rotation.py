"""Master key rotation: rotate, rewrap every data key, retire the old version, data still opens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ocrvault.cli import app as cli_app
from ocrvault.config import Settings
from ocrvault.jobs.service import key_of
from ocrvault.store.documents import ObjectKind
from ocrvault.store.repository import JobRepository
from tests.conftest import auth, issue, runtime_of
from tests.docgen import encode, text_page


def test_rotate_rewrap_retire_keeps_every_job_readable(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    client = make_client(Settings(data_dir=data_dir, workers=0))
    key = issue(client, "acme")
    body = encode(text_page(["rotate me"], size=(600, 200)), "PNG")
    job_ids = [client.post("/v1/read", content=body, headers=auth(key)).json()["id"]
               for _ in range(3)]
    client.delete(f"/v1/jobs/{job_ids[2]}", headers=auth(key))
    cli = CliRunner()
    env = {"OCRVAULT_DATA_DIR": str(data_dir)}

    assert cli.invoke(cli_app, ["keys", "rotate-master"], env=env).exit_code == 0
    refused = cli.invoke(cli_app, ["keys", "retire", "1"], env=env)
    assert refused.exit_code == 1 and "2 data keys are still wrapped under v1" in refused.output

    rewrap = cli.invoke(cli_app, ["keys", "rewrap", "--batch", "1"], env=env)
    assert rewrap.exit_code == 0, rewrap.output
    assert "2 data keys now wrapped under v2" in rewrap.output
    retire = cli.invoke(cli_app, ["keys", "retire", "1"], env=env)
    assert retire.exit_code == 0, retire.output
    status = cli.invoke(cli_app, ["keys", "status"], env=env).output
    assert status.split() == ["v2", "(primary):", "2", "data", "keys"]

    runtime = runtime_of(client)  # loaded v1 and v2 before: must follow the file's new state
    with runtime.db.transaction() as session:
        rows = [JobRepository(session).by_id(job_id) for job_id in job_ids[:2]]
    for row in rows:
        assert row is not None and row.master_key_version == 2
        assert runtime.documents.get(key_of(row), ObjectKind.INPUT) == body
    assert cli.invoke(cli_app, ["keys", "retire", "2"], env=env).exit_code != 0  # the primary

"""The data dir and the keyring on disk: private modes, and the keys kept apart if asked."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ocrvault.cli import app as cli_app
from ocrvault.datadir import UnsafeDataDir
from ocrvault.runtime import Runtime
from tests.conftest import auth, issue, wait_for_job
from tests.databases import ON_POSTGRES, TestDatabases
from tests.docgen import encode, text_page
from tests.engine_fakes import FixedEngine
from tests.leaks import found_under


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    """Start from a shell's usual umask (022), whatever earlier tests set; restore it after."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def modes_under(root: Path) -> dict[str, int]:
    modes = {".": stat.S_IMODE(root.stat().st_mode)}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath) / name
            modes[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return modes


def test_every_file_is_0600_and_every_dir_0700_after_a_job(
    databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    client = make_client(databases.settings(data_dir, workers=1), engine=FixedEngine())
    key = issue(client, "acme")
    job = client.post("/v1/read", content=encode(text_page(["mode"]), "PNG"),
                      params={"outputs": "text"}, headers=auth(key)).json()
    assert wait_for_job(client, job["id"], key)["status"] == "succeeded"

    modes = modes_under(data_dir)  # while the server runs: the WAL and SHM files exist
    # On PostgreSQL the database's files are the server's (its data directory, the operator's
    # to protect): the data dir holds the keyring and blobs only.
    database_files = set() if ON_POSTGRES else {"ocrvault.db", "ocrvault.db-wal",
                                                "ocrvault.db-shm"}
    assert database_files | {"keyring.json"} <= set(modes)
    assert any(name.startswith("blobs/") and name.count("/") == 3 for name in modes)
    wrong = {name: f"{mode:04o}" for name, mode in modes.items()
             if mode != (0o700 if (data_dir / name).is_dir() else 0o600)}
    assert not wrong


def test_a_data_dir_others_can_read_is_refused_naming_the_fix(databases: TestDatabases,
                                                              tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    with pytest.raises(UnsafeDataDir, match=f"chmod 700 {data_dir}"):
        Runtime.build(databases.settings(data_dir, workers=0), engine=FixedEngine())
    assert not databases.created(data_dir)

    result = CliRunner().invoke(cli_app, ["keys", "status"], env=databases.env(data_dir))
    assert result.exit_code == 1
    assert f"chmod 700 {data_dir}" in " ".join(result.output.split())


def test_the_keyring_can_live_outside_the_data_dir(
    databases: TestDatabases,
    make_client: Callable[..., TestClient], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    data_dir, keyring = tmp_path / "data", tmp_path / "secrets" / "ocrvault-keyring.json"
    client = make_client(databases.settings(data_dir, keyring_path=keyring, workers=1),
                         engine=FixedEngine())
    key = issue(client, "acme")
    job = client.post("/v1/read", content=encode(text_page(["apart"]), "PNG"),
                      headers=auth(key)).json()
    assert wait_for_job(client, job["id"], key)["status"] == "succeeded"

    assert stat.S_IMODE(keyring.stat().st_mode) == 0o600
    masters = [base64.b64decode(encoded)
               for encoded in json.loads(keyring.read_text())["versions"].values()]
    needles = masters + [base64.b64encode(master) for master in masters]
    assert not found_under(data_dir, needles)
    assert not [path for path in data_dir.rglob("*keyring*")]
    assert "inside the data dir" not in caplog.text


def test_a_keyring_inside_the_data_dir_is_warned_about_at_start(
    databases: TestDatabases, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="ocrvault.runtime"):
        Runtime.build(databases.settings(tmp_path / "data", workers=0), engine=FixedEngine()).stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("inside the data dir" in m and "OCRVAULT_KEYRING_PATH" in m for m in warnings)


def test_no_keyring_warning_when_the_master_key_comes_from_the_environment(
    databases: TestDatabases, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    master = base64.b64encode(os.urandom(32)).decode()
    with caplog.at_level(logging.WARNING, logger="ocrvault.runtime"):
        Runtime.build(databases.settings(tmp_path / "data", workers=0, master_key=f"1:{master}"),
                      engine=FixedEngine()).stop()
    assert "inside the data dir" not in caplog.text

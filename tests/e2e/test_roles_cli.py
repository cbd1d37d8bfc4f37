"""`ocrvault migrate` and `ocrvault serve --role ...` at the command line: the schema is
migrated by one command that says from and to what, a node on the wrong schema or with a
queue it cannot use refuses in one line, and a scheduler runs without HTTP until SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ocrvault.cli import app
from ocrvault.store.db import code_revisions
from tests.databases import TestDatabases
from tests.e2e.live import LiveServer

HEAD = "+".join(sorted(code_revisions()))


def ocrvault(databases: TestDatabases, data_dir: Path, *args: str,
             **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), *args],
                                env={**databases.env(data_dir), **env})
    return result.exit_code, result.output


def test_migrate_brings_a_new_database_to_this_codes_schema_and_says_from_and_to(
        databases: TestDatabases, tmp_path: Path) -> None:
    code, output = ocrvault(databases, tmp_path / "data", "migrate")
    assert code == 0, output
    assert f"schema migrated from revision none to {HEAD}" in output
    code, output = ocrvault(databases, tmp_path / "data", "migrate")
    assert code == 0, output
    assert f"schema already at revision {HEAD}" in output


def assert_one_line_refusal(code: int, output: str, expected_code: int, *naming: str) -> None:
    assert code == expected_code, output
    assert "Traceback" not in output
    [line] = output.strip().splitlines()
    for text_ in naming:
        assert text_ in line


@pytest.mark.parametrize(("role", "env"), [("scheduler", {}),
                                           ("all", {"OCRVAULT_MIGRATE_ON_START": "false"})])
def test_a_node_on_a_database_never_migrated_refuses_in_one_line_naming_ocrvault_migrate(
        databases: TestDatabases, tmp_path: Path, role: str, env: dict[str, str]) -> None:
    code, output = ocrvault(databases, tmp_path / "data", "serve", "--role", role, **env)
    assert_one_line_refusal(code, output, 1, "no ocrvault schema", "`ocrvault migrate`")


def test_a_node_on_a_schema_newer_than_its_code_refuses_in_one_line(
        databases: TestDatabases, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert ocrvault(databases, data_dir, "migrate")[0] == 0
    databases.execute(data_dir, "UPDATE alembic_version SET version_num = '9999_next'")
    for args in (["serve", "--role", "scheduler"], ["serve"], ["migrate"]):
        code, output = ocrvault(databases, data_dir, *args)
        assert_one_line_refusal(code, output, 1, "9999_next, newer than this code")


@pytest.mark.parametrize("role", ["worker", "api"])
def test_a_worker_or_api_node_on_the_local_queue_is_refused_naming_the_celery_queue(
        databases: TestDatabases, tmp_path: Path, role: str) -> None:
    code, output = ocrvault(databases, tmp_path / "data", "serve", "--role", role)
    assert_one_line_refusal(code, output, 2, f"--role {role}", "OCRVAULT_QUEUE=celery")
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_a_scheduler_runs_without_http_until_sigterm(databases: TestDatabases,
                                                     tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert ocrvault(databases, data_dir, "migrate")[0] == 0
    server = LiveServer(data_dir, "--role", "scheduler", env=databases.env(data_dir))
    try:
        server.wait_for_output("running")
        server.process.send_signal(signal.SIGTERM)
        assert server.wait_exit() == 0
        assert "ocrvault scheduler" in server.output and "stopped" in server.output
        assert "Uvicorn running" not in server.output
    finally:
        server.close()

"""A new admin key reaches a person, not a log: printed only to a terminal, else left in a
0600 file whose path is printed (journald and container logs keep every stdout line)."""

from __future__ import annotations

import os
import pty
import select
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ocrvault.access.keys import KEY_PATTERN, parse_key
from ocrvault.cli import app
from tests.databases import TestDatabases

SRC = Path(__file__).resolve().parents[2] / "src"


def key_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("admin-key-*.txt"))


def assert_handed_over_in_a_file(output: str, data_dir: Path) -> None:
    assert KEY_PATTERN.search(output) is None, output
    [path] = key_files(data_dir)
    assert str(path) in " ".join(output.split())  # rich may wrap a long path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert parse_key(path.read_text().strip()) is not None


@pytest.mark.parametrize("command", [["admin", "bootstrap", "--tenant", "acme", "--create"],
                                     ["admin", "create-tenant", "acme", "--create"]])
def test_admin_key_goes_to_a_0600_file_when_stdout_is_not_a_terminal(
    databases: TestDatabases, tmp_path: Path, command: list[str],
) -> None:
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(app, command, env=databases.env(data_dir))
    assert result.exit_code == 0, result.output
    assert_handed_over_in_a_file(result.output, data_dir)


def test_print_forces_the_key_to_stdout(databases: TestDatabases, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(app, ["admin", "bootstrap", "--print", "--create"],
                                env=databases.env(data_dir))
    assert result.exit_code == 0, result.output
    match = KEY_PATTERN.search(result.output)
    assert match is not None and parse_key(match[0]) is not None
    assert not key_files(data_dir)


def test_first_start_of_serve_does_not_print_the_key_to_a_log(
    databases: TestDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    def run_nothing(server: uvicorn.Server, sockets: Any = None) -> None:
        server.config.app.state.runtime.stop()  # built, never started: release what it holds

    monkeypatch.setattr(uvicorn.Server, "run", run_nothing)
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(app, ["serve"], env={**databases.env(data_dir),
                                                    "OCRVAULT_WORKERS": "0"})
    assert result.exit_code == 0, result.output
    assert_handed_over_in_a_file(result.output, data_dir)
    output = " ".join(result.output.split())
    [key_file] = key_files(data_dir)
    assert f"KEY=$(cat {key_file})" in output
    # The try-it line needs no file of the user's and names what it sends.
    assert '"$URL/v1/sample.png" -H "Authorization: Bearer $KEY" -o sample.png' in output
    assert "-F file=@sample.png" in output and "--data-binary" not in output
    # Every hint names the data dir absolutely, so it works from any folder.
    assert f"data: {data_dir}" in output
    assert f"--data-dir {data_dir} admin bootstrap" in output


@pytest.mark.parametrize("command", [["admin", "bootstrap"], ["admin", "create-tenant", "acme"]])
def test_a_key_is_made_in_a_missing_data_dir_only_with_create(
    databases: TestDatabases, tmp_path: Path, command: list[str],
) -> None:
    data_dir = tmp_path / "elsewhere" / "ocrvault-data"
    env = databases.env(data_dir)
    refused = CliRunner().invoke(app, ["--data-dir", str(data_dir), *command], env=env)
    assert refused.exit_code == 2, refused.output
    message = " ".join(refused.output.split())
    assert f"no data dir at {data_dir}" in message and "--create" in message
    assert not data_dir.exists()

    made = CliRunner().invoke(app, ["--data-dir", str(data_dir), *command, "--create"],
                              env=env)
    assert made.exit_code == 0, made.output
    assert_handed_over_in_a_file(made.output, data_dir)
    assert f"data dir is {data_dir}" in " ".join(made.output.split())


def test_data_dir_option_wins_over_the_environment(databases: TestDatabases,
                                                   tmp_path: Path) -> None:
    chosen, ignored = tmp_path / "chosen", tmp_path / "ignored"
    result = CliRunner().invoke(app, ["--data-dir", str(chosen), "admin", "bootstrap",
                                      "--create"],
                                env={**databases.env(chosen), "OCRVAULT_DATA_DIR": str(ignored)})
    assert result.exit_code == 0, result.output
    assert_handed_over_in_a_file(result.output, chosen)
    assert not ignored.exists()


def read_terminal(process: subprocess.Popen[bytes], leader: int, timeout: float = 60) -> str:
    """Everything the process wrote to the terminal, until it exits and the terminal is idle.

    The caller keeps the follower end open: had only the child held it, Linux may drop what
    the child wrote last when it exits and the terminal hangs up.
    """
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            chunks.append(os.read(leader, 4096))
        elif process.poll() is not None:
            return b"".join(chunks).decode(errors="replace")
    raise AssertionError(f"still running after {timeout}s: {b''.join(chunks)!r}")


def test_admin_key_is_printed_on_a_terminal_and_written_nowhere(databases: TestDatabases,
                                                                tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(SRC), **databases.env(data_dir), "COLUMNS": "200"}
    try:
        process = subprocess.Popen([sys.executable, "-m", "ocrvault", "admin", "bootstrap",
                                    "--create"],
                                   stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                                   env=env)
        output = read_terminal(process, leader)
    finally:
        os.close(follower)
        os.close(leader)
    assert process.returncode == 0, output
    match = KEY_PATTERN.search(output)
    assert match is not None and parse_key(match[0]) is not None, output
    assert not key_files(data_dir)

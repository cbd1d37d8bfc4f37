"""A new admin key reaches a person, not a log: printed only to a terminal, else left in a
0600 file whose path is printed (journald and container logs keep every stdout line)."""

from __future__ import annotations

import errno
import os
import pty
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ocrvault.access.keys import KEY_PATTERN, parse_key
from ocrvault.cli import app

SRC = Path(__file__).resolve().parents[2] / "src"


def key_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("admin-key-*.txt"))


def assert_handed_over_in_a_file(output: str, data_dir: Path) -> None:
    assert KEY_PATTERN.search(output) is None, output
    [path] = key_files(data_dir)
    assert str(path) in " ".join(output.split())  # rich may wrap a long path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert parse_key(path.read_text().strip()) is not None


@pytest.mark.parametrize("command", [["admin", "bootstrap", "--tenant", "acme"],
                                     ["admin", "create-tenant", "acme"]])
def test_admin_key_goes_to_a_0600_file_when_stdout_is_not_a_terminal(
    tmp_path: Path, command: list[str],
) -> None:
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(app, command, env={"OCRVAULT_DATA_DIR": str(data_dir)})
    assert result.exit_code == 0, result.output
    assert_handed_over_in_a_file(result.output, data_dir)


def test_print_forces_the_key_to_stdout(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(app, ["admin", "bootstrap", "--print"],
                                env={"OCRVAULT_DATA_DIR": str(data_dir)})
    assert result.exit_code == 0, result.output
    match = KEY_PATTERN.search(result.output)
    assert match is not None and parse_key(match[0]) is not None
    assert not key_files(data_dir)


def test_first_start_of_serve_does_not_print_the_key_to_a_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    def run_nothing(app_: Any, **_options: Any) -> None:
        app_.state.runtime.stop()  # built, never started: release what it holds

    monkeypatch.setattr(uvicorn, "run", run_nothing)
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(app, ["serve"], env={"OCRVAULT_DATA_DIR": str(data_dir),
                                                    "OCRVAULT_WORKERS": "0"})
    assert result.exit_code == 0, result.output
    assert_handed_over_in_a_file(result.output, data_dir)
    assert "Bearer $(cat " in result.output


def test_admin_key_is_printed_on_a_terminal_and_written_nowhere(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(SRC), "OCRVAULT_DATA_DIR": str(data_dir),
           "COLUMNS": "200"}
    process = subprocess.Popen([sys.executable, "-m", "ocrvault", "admin", "bootstrap"],
                               stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                               env=env)
    os.close(follower)
    chunks = []
    while True:  # until the child closes the terminal
        try:
            chunk = os.read(leader, 4096)
        except OSError as error:
            if error.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    output = b"".join(chunks).decode(errors="replace")
    match = KEY_PATTERN.search(output)
    assert match is not None and parse_key(match[0]) is not None, output
    assert not key_files(data_dir)

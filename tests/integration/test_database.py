"""The database handle on either backend: the URLs it accepts, migrations from many nodes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from ocrvault.store.db import MIGRATIONS_DIR, engine_url
from tests.databases import ON_POSTGRES, TestDatabases
from tests.e2e.live import SRC

NODES = 4
# One node starting: it connects, says so, and migrates when told (so that all start at once).
NODE = """
import sys
from ocrvault.store.db import Database
node = Database(sys.argv[1])
node.ping()
print("ready", flush=True)
sys.stdin.readline()
node.migrate()
node.dispose()
"""


def test_a_plain_postgresql_url_means_psycopg_3_and_others_are_kept() -> None:
    assert engine_url("postgresql://app@db:5432/ocr").drivername == "postgresql+psycopg"
    assert engine_url("postgresql+psycopg://app@db/ocr").drivername == "postgresql+psycopg"
    assert engine_url("sqlite:////srv/ocrvault.db").drivername == "sqlite"


@pytest.mark.skipif(not ON_POSTGRES, reason="an embedded SQLite database has one process; "
                    "the PostgreSQL run (make test-postgres) proves this")
def test_nodes_migrating_one_database_at_once_all_start_on_the_newest_schema(
        databases: TestDatabases, tmp_path: Path) -> None:
    url = databases.url(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    nodes = [subprocess.Popen([sys.executable, "-c", NODE, url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for _ in range(NODES)]
    for node in nodes:
        assert node.stdout is not None and node.stdout.readline() == b"ready\n"
    for node in nodes:  # go
        assert node.stdin is not None
        node.stdin.write(b"\n")
        node.stdin.flush()
    errors = [node.communicate(timeout=120)[1].decode()[-400:] for node in nodes]

    assert [node.returncode for node in nodes] == [0] * NODES, errors
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert databases.execute(tmp_path, "SELECT version_num FROM alembic_version") == [(head,)]

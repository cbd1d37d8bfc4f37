"""Databases for the audit tests (a SQLite file, or a PostgreSQL schema of the test's own),
and the writer that the concurrency test runs in separate processes.

PostgreSQL is the machine's server (127.0.0.1:5432, database ``test``); each use gets a
fresh schema named for this branch, dropped afterwards. Without the server the test is
skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditLog, ChainSigner
from ocrvault.crypto import FileKeyringProvider, Keyring
from ocrvault.store.db import Database

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgresql"]


def _pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test",
                               autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 (database test) is not reachable: {error}")


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of ``backend``, removed when the block ends."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    admin = _pg_admin()
    schema = f"wt_audit_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def append_events(url: str, keyring_path: str, tenant: str | None, count: int,
                  start: Any) -> None:
    """In a process of its own: wait for ``start`` (a barrier), then record ``count`` events
    for ``tenant``, each naming this process and its number."""
    database = Database(url)
    audit = AuditLog(database, ChainSigner(Keyring(FileKeyringProvider(Path(keyring_path)))))
    start.wait()
    try:
        for n in range(count):
            audit.record(AuditEvent(AuditAction.JOB_RESULT_READ,
                                    Actor(name=f"writer {os.getpid()}", tenant_id=tenant),
                                    target_id=f"job-{n}"))
    finally:
        database.dispose()

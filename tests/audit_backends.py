"""The audit writer that the concurrency test runs in separate processes, on the test's
database (tests/databases.py: SQLite, or a PostgreSQL schema of its own)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditLog, ChainSigner
from ocrvault.crypto import FileKeyringProvider, Keyring
from ocrvault.store.db import Database


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

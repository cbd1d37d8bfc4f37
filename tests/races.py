"""Two requests racing on one row of PostgreSQL, in a fixed order, without timing.

The first request is paused inside its transaction, after its write, as it records its
audit entry (``PausedAudit``); the second is started and the test waits until PostgreSQL
says it is blocked on the first (``wait_until_blocked``); then the first commits. Whatever
the second request read before it blocked is what decides the outcome: a read without
FOR UPDATE saw the row as it was before the first write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from ocrvault.audit import AuditAction, AuditEvent, AuditSink
from ocrvault.store.db import Transaction
from tests.databases import TestDatabases

WAIT = 60.0  # a bound on waiting, never a pause


class PausedAudit:
    """An audit sink that holds the first ``action`` it records, inside its transaction,
    until :meth:`release`; every entry still goes to the real sink."""

    def __init__(self, sink: AuditSink, action: AuditAction) -> None:
        self.sink, self.action = sink, action
        self.holder: int | None = None  # the paused transaction's PostgreSQL backend
        self._inside, self._release = threading.Event(), threading.Event()

    def record(self, event: AuditEvent, within: Transaction | None = None) -> None:
        if event.action == self.action and within is not None and self.holder is None:
            self.holder = within.execute(text("SELECT pg_backend_pid()")).scalar_one()
            self._inside.set()
            assert self._release.wait(WAIT), "never released"
        self.sink.record(event, within)

    def wait_inside(self) -> int:
        assert self._inside.wait(WAIT), f"nothing recorded {self.action}"
        assert self.holder is not None
        return self.holder

    def release(self) -> None:
        self._release.set()


def wait_until_blocked(databases: TestDatabases, data_dir: Path, holder: int) -> None:
    """Returns once a PostgreSQL session waits for a lock that the backend ``holder`` holds."""
    deadline = time.monotonic() + WAIT
    while not databases.execute(data_dir, "SELECT pid FROM pg_stat_activity "
                                "WHERE :holder = ANY(pg_blocking_pids(pid))", holder=holder):
        assert time.monotonic() < deadline, "nothing waited for the lock"
        time.sleep(0.02)


def race(databases: TestDatabases, data_dir: Path, paused: PausedAudit,
         first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """Run ``first`` until it is paused in its transaction, then ``second`` until it waits
    for ``first``'s lock, then let both finish; their results, in that order."""
    results: dict[str, Any] = {}
    threads = [threading.Thread(target=lambda: results.update(first=first())),
               threading.Thread(target=lambda: results.update(second=second()))]
    threads[0].start()
    holder = paused.wait_inside()
    threads[1].start()
    try:
        wait_until_blocked(databases, data_dir, holder)
    finally:
        paused.release()
        for thread in threads:
            thread.join(WAIT)
    return results.get("first"), results.get("second")

"""Audit appends from several real processes at once, to their own tenants' chains, to one
shared tenant's chain and to the deployment chain, on SQLite and on PostgreSQL: every
chain verifies afterwards and holds exactly the entries appended to it, once each."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path

import pytest

from ocrvault.audit import AuditAction, ChainSigner, verify_log
from ocrvault.audit.chain import DEPLOYMENT
from ocrvault.crypto import FileKeyringProvider, Keyring
from ocrvault.store.audit import AuditRepository
from ocrvault.store.db import Database
from tests.audit_backends import BACKENDS, append_events, database_url

PER_PROCESS = 30
# One process each on two tenants of their own, three on one shared tenant, one with no
# tenant (the deployment chain, which the first appends of each tenant also write to).
PLAN: list[str | None] = ["alpha", "beta", "shared", "shared", "shared", None]


@pytest.mark.parametrize("backend", BACKENDS)
def test_processes_appending_at_once_leave_every_chain_whole_with_each_entry_once(
    backend: str, tmp_path: Path,
) -> None:
    with database_url(backend, tmp_path) as url:
        db = Database(url)
        try:
            _append_at_once_and_check(db, url, tmp_path)
        finally:
            db.dispose()


def _append_at_once_and_check(db: Database, url: str, tmp_path: Path) -> None:
    db.migrate()
    keyring_path = tmp_path / "keyring.json"
    signer = ChainSigner(Keyring(FileKeyringProvider(keyring_path)))  # made before the writers
    spawn = multiprocessing.get_context("spawn")  # separate interpreters, no shared state
    start = spawn.Barrier(len(PLAN))
    writers = [spawn.Process(target=append_events,
                             args=(url, str(keyring_path), tenant, PER_PROCESS, start))
               for tenant in PLAN]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=240)
    assert [writer.exitcode for writer in writers] == [0] * len(PLAN)

    report = verify_log(db, signer)
    assert report.ok, [str(chain) for chain in report.broken]
    heads = {chain.chain: (chain.entries, chain.head_pos) for chain in report.chains}
    assert heads == {"tenant:alpha": (30, 30), "tenant:beta": (30, 30),
                     "tenant:shared": (90, 90), DEPLOYMENT: (30 + 3, 30 + 3)}

    with db.transaction() as session:
        stored = AuditRepository(session)
        entries = [e for chain in stored.chain_names() for e in stored.in_chain(chain, 0, 10_000)]
    appended = Counter((e.chain, e.actor_name, e.target_id) for e in entries
                       if e.action == AuditAction.JOB_RESULT_READ)
    expected = Counter((f"tenant:{tenant}" if tenant else DEPLOYMENT,
                        f"writer {writer.pid}", f"job-{n}")
                       for tenant, writer in zip(PLAN, writers, strict=True)
                       for n in range(PER_PROCESS))
    assert appended == expected
    opened = sorted(e.target_id or "" for e in entries
                    if e.action == AuditAction.CHAIN_OPENED)
    assert opened == ["tenant:alpha", "tenant:beta", "tenant:shared"]
    assert len({e.seq for e in entries}) == len(entries) == 30 * 6 + 3

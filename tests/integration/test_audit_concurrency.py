"""Audit appends from several real processes at once, to their own tenants' chains, to one
shared tenant's chain and to the deployment chain, on SQLite and on PostgreSQL: every
chain verifies afterwards and holds exactly the entries appended to it, once each. And on
PostgreSQL, an append locks its own tenant's chain only."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditLog, ChainSigner, verify_log
from ocrvault.audit.chain import DEPLOYMENT
from ocrvault.crypto import FileKeyringProvider, Keyring
from ocrvault.store.audit import AuditRepository
from ocrvault.store.db import Database
from tests.audit_backends import append_events
from tests.databases import ON_POSTGRES, TestDatabases

PER_PROCESS = 30
# One process each on two tenants of their own, three on one shared tenant, one with no
# tenant (the deployment chain, which the first appends of each tenant also write to).
PLAN: list[str | None] = ["alpha", "beta", "shared", "shared", "shared", None]


def test_processes_appending_at_once_leave_every_chain_whole_with_each_entry_once(
    databases: TestDatabases, tmp_path: Path,
) -> None:
    url = databases.url(tmp_path)
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


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite has one writer for the whole file; "
                    "the PostgreSQL run (make test-postgres) proves this")
def test_on_postgresql_an_open_append_holds_its_own_tenants_chain_only(
        databases: TestDatabases, tmp_path: Path) -> None:
    """While one transaction has appended to tenant a's chain and not committed, an append
    for tenant b goes through at once, and one for tenant a waits (here: past its
    lock_timeout). No timing is measured: the locks say it."""
    url = databases.url(tmp_path)
    holder, other = Database(url), Database(url)
    try:
        holder.migrate()
        signer = ChainSigner(Keyring(FileKeyringProvider(tmp_path / "keyring.json")))
        held, probe = AuditLog(holder, signer), AuditLog(other, signer)
        for tenant in ("a", "b"):  # open both chains first: a chain's opening also
            held.record(_read_by(tenant))  # takes the deployment chain's lock

        def append_within(tenant: str, lock_timeout: str) -> None:
            with other.transaction() as session:
                session.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
                probe.record(_read_by(tenant), within=session)

        with holder.transaction() as session:
            held.record(_read_by("a"), within=session)
            append_within("b", "30s")  # would wait for the holder if chains were shared
            with pytest.raises(OperationalError, match="lock timeout"):
                append_within("a", "200ms")
        report = verify_log(holder, signer)
        assert report.ok
        assert {c.chain: c.head_pos for c in report.chains} == {
            "tenant:a": 2, "tenant:b": 2, DEPLOYMENT: 2}
    finally:
        holder.dispose()
        other.dispose()


def _read_by(tenant: str) -> AuditEvent:
    return AuditEvent(AuditAction.JOB_RESULT_READ, Actor(name="key", tenant_id=tenant))

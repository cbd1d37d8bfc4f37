"""The audit log's hash chain: verify passes on an untouched log and names the first
entry that was changed, removed or inserted, however the rows were edited."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from ocrvault.audit import (
    Actor,
    AuditAction,
    AuditEvent,
    AuditLog,
    ChainSigner,
    TamperKind,
    verify_chain,
)
from ocrvault.audit.chain import GENESIS, canonical, entry_hash, fields_of
from ocrvault.crypto import FileKeyringProvider, Keyring
from ocrvault.errors import IntegrityError
from ocrvault.store.db import Database
from ocrvault.store.repository import AuditRepository
from ocrvault.store.tables import Base
from tests.clocks import FakeClock
from tests.databases import TestDatabases


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(databases: TestDatabases, tmp_path: Path) -> Iterator[Database]:
    database = Database(databases.url(tmp_path))
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def audit(db: Database, tmp_path: Path, clock: FakeClock) -> AuditLog:
    keyring = Keyring(FileKeyringProvider(tmp_path / "keyring.json"))
    return AuditLog(db, ChainSigner(keyring), clock, retention=timedelta(days=30))


def record(audit: AuditLog, count: int, tenant: str = "t1") -> None:
    for n in range(count):
        audit.record(AuditEvent(AuditAction.JOB_RESULT_READ,
                                Actor(name="key one", tenant_id=tenant, key_id="k1"),
                                target_id=f"job-{n}"))


def sql(db: Database, statement: str, **params: Any) -> None:
    with db.engine.begin() as connection:
        connection.execute(text(statement), params)


def forge(db: Database, copy_of: int, **changes: Any) -> None:
    """Insert a copy of entry ``copy_of`` with ``changes``, as an attacker with SQL access would."""
    table = Base.metadata.tables["audit_entries"]
    with db.engine.begin() as connection:
        row = connection.execute(select(table).where(table.c.seq == copy_of)).mappings().one()
        connection.execute(insert(table).values({**row, **changes}))


def verdict(audit: AuditLog) -> tuple[TamperKind, int] | None:
    report = verify_chain(audit.db, audit.signer)
    return None if report.tamper is None else (report.tamper.kind, report.tamper.seq)


def test_an_untouched_log_verifies(audit: AuditLog) -> None:
    assert verify_chain(audit.db, audit.signer).ok  # empty, never signed
    record(audit, 5)
    report = verify_chain(audit.db, audit.signer)
    assert report.ok and report.entries == 5 and report.head_seq == 5


def test_canonical_form_is_sorted_compact_utf8_json(audit: AuditLog) -> None:
    audit.record(AuditEvent(AuditAction.KEY_CREATED, Actor(name="clé", tenant_id="t1")))
    with audit.db.transaction() as session:
        row = AuditRepository(session).by_seq(1)
        assert row is not None
        raw = canonical(fields_of(row))
        assert raw.startswith(b'{"action":"key:api_key:created","actor_key_id":null,'
                              b'"actor_name":"cl\xc3\xa9","at":"2030-01-01T12:00:00.000000Z"')
        assert b" " not in raw and row.prev_hash == GENESIS


@pytest.mark.parametrize(
    ("column", "value"),
    [("target_id", "job-other"), ("actor_name", "someone else"), ("action", "job:data:deleted"),
     ("at", "2029-01-01 00:00:00.000000"), ("prev_hash", "f" * 64), ("mac", "0" * 64)],
)
def test_changing_any_field_of_an_entry_names_that_entry(audit: AuditLog, column: str,
                                                         value: str) -> None:
    record(audit, 6)
    sql(audit.db, f"UPDATE audit_entries SET {column} = :v WHERE seq = 3", v=value)
    assert verdict(audit) == (TamperKind.CHANGED, 3)


def test_a_rewrite_that_recomputes_every_hash_is_caught_by_the_signatures(
    audit: AuditLog,
) -> None:
    record(audit, 6)
    sql(audit.db, "UPDATE audit_entries SET target_id = 'job-x' WHERE seq = 2")
    with audit.db.transaction() as session:  # relink everything after it, as an attacker would
        entries = AuditRepository(session)
        previous = entries.by_seq(2)
        for seq in range(3, 7):
            current = entries.by_seq(seq)
            assert previous is not None and current is not None
            current.prev_hash = entry_hash(previous)
            session.flush()
            previous = current
        chain = entries.chain()
        chain.head_hash = entry_hash(previous)
    assert verdict(audit) == (TamperKind.CHANGED, 2)


def test_removing_an_entry_names_it(audit: AuditLog) -> None:
    record(audit, 6)
    sql(audit.db, "DELETE FROM audit_entries WHERE seq = 4")
    assert verdict(audit) == (TamperKind.REMOVED, 4)


def test_removing_the_newest_entries_is_caught_by_the_signed_head(audit: AuditLog) -> None:
    record(audit, 6)
    sql(audit.db, "DELETE FROM audit_entries WHERE seq >= 5")
    assert verdict(audit) == (TamperKind.REMOVED, 5)


def test_inserting_an_entry_between_two_names_it(audit: AuditLog) -> None:
    record(audit, 6)
    for seq in range(6, 3, -1):  # make room at 4, as an attacker would
        sql(audit.db, "UPDATE audit_entries SET seq = seq + 1, "
            "id = 'moved-' || CAST(seq AS VARCHAR(20)) WHERE seq = :s", s=seq)
    with audit.db.transaction() as session:
        third = AuditRepository(session).by_seq(3)
        assert third is not None
        link = entry_hash(third)
    forge(audit.db, 3, seq=4, id="forged", action="job:data:deleted", prev_hash=link)
    assert verdict(audit) == (TamperKind.INSERTED, 4)


def test_appending_past_the_signed_head_names_the_entry(audit: AuditLog) -> None:
    record(audit, 3)
    forge(audit.db, 3, seq=4, id="forged")
    assert verdict(audit) == (TamperKind.INSERTED, 4)


def test_moving_the_head_without_the_key_is_caught(audit: AuditLog) -> None:
    record(audit, 3)
    sql(audit.db, "DELETE FROM audit_entries WHERE seq = 3")
    with audit.db.transaction() as session:
        entries = AuditRepository(session)
        chain, second = entries.chain(), entries.by_seq(2)
        assert second is not None
        chain.head_seq, chain.head_hash = 2, entry_hash(second)
    assert verdict(audit) == (TamperKind.HEAD, 2)


def test_concurrent_appends_never_fork_the_chain(audit: AuditLog) -> None:
    threads = [threading.Thread(target=record, args=(audit, 25, f"t{n}")) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = verify_chain(audit.db, audit.signer)
    assert report.ok and report.entries == 200 and report.head_seq == 200


def test_retention_cut_leaves_a_verifiable_log(audit: AuditLog, clock: FakeClock) -> None:
    record(audit, 4)
    clock.advance(timedelta(days=20))
    record(audit, 3)
    clock.advance(timedelta(days=15))  # the first 4 are now past the 30 days
    assert audit.purge_expired() == 4
    assert audit.purge_expired() == 0
    report = verify_chain(audit.db, audit.signer)
    assert report.ok and report.first_seq == 5 and report.entries == 4  # 3 kept + the cut's own
    with audit.db.transaction() as session:
        last = AuditRepository(session).by_seq(8)
        assert last is not None and last.action == AuditAction.AUDIT_PURGED
    sql(audit.db, "DELETE FROM audit_entries WHERE seq = 5")  # the oldest kept one
    assert verdict(audit) == (TamperKind.REMOVED, 5)


def test_a_forged_retention_checkpoint_is_caught(audit: AuditLog, clock: FakeClock) -> None:
    record(audit, 4)
    clock.advance(timedelta(days=31))
    record(audit, 2)
    audit.purge_expired()
    sql(audit.db, "DELETE FROM audit_entries WHERE seq = 5")
    with audit.db.transaction() as session:  # hide the removal behind a moved checkpoint
        entries = AuditRepository(session)
        chain, fifth_gone_sixth = entries.chain(), entries.by_seq(6)
        assert fifth_gone_sixth is not None
        chain.anchor_seq, chain.anchor_hash = 5, fifth_gone_sixth.prev_hash
    assert verdict(audit) == (TamperKind.CHECKPOINT, 5)


def test_retention_refuses_to_cut_away_a_tampered_entry(audit: AuditLog,
                                                        clock: FakeClock) -> None:
    record(audit, 4)
    sql(audit.db, "UPDATE audit_entries SET target_id = 'x' WHERE seq = 2")
    clock.advance(timedelta(days=31))
    with pytest.raises(IntegrityError):
        audit.purge_expired()
    assert verdict(audit) == (TamperKind.CHANGED, 2)

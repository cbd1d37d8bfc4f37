"""The audit log's hash chains, one per tenant: verify passes on an untouched log and
names, per chain, the first entry that was changed, removed, inserted or moved, however
the rows were edited; retention leaves every chain verifiable."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from ocrvault.audit import (
    Actor,
    AuditAction,
    AuditEvent,
    AuditLog,
    AuditService,
    ChainSigner,
    TamperKind,
    verify_log,
)
from ocrvault.audit.chain import DEPLOYMENT, GENESIS, canonical, entry_hash, fields_of
from ocrvault.crypto import FileKeyringProvider, Keyring
from ocrvault.errors import IntegrityError
from ocrvault.store.audit import AuditRepository, StoredEntry
from ocrvault.store.db import Database
from ocrvault.store.tables import Base
from tests.clocks import FakeClock
from tests.databases import TestDatabases

T1, T2 = "tenant:t1", "tenant:t2"


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


def record(audit: AuditLog, count: int, tenant: str | None = "t1") -> None:
    for n in range(count):
        audit.record(AuditEvent(AuditAction.JOB_RESULT_READ,
                                Actor(name="key one", tenant_id=tenant, key_id="k1"),
                                target_id=f"job-{n}"))


def sql(db: Database, statement: str, **params: Any) -> None:
    with db.engine.begin() as connection:
        connection.execute(text(statement), params)


def entry(db: Database, chain: str, pos: int) -> StoredEntry:
    with db.transaction() as session:
        found = AuditRepository(session).in_chain(chain, pos - 1, 1)
    assert found and found[0].pos == pos
    return found[0]


def forge(db: Database, chain: str, copy_of: int, **changes: Any) -> None:
    """Insert a copy of an entry with ``changes``, as an attacker with SQL access would."""
    table = Base.metadata.tables["audit_entries"]
    with db.engine.begin() as connection:
        row = connection.execute(select(table).where(
            table.c.chain == chain, table.c.pos == copy_of)).mappings().one()
        # seq left out, not NULL: the database numbers it (PostgreSQL refuses an explicit NULL)
        values = {name: value for name, value in row.items() if name != "seq"}
        connection.execute(insert(table).values({**values, **changes}))


def verdicts(audit: AuditLog) -> dict[str, tuple[TamperKind, int] | None]:
    report = verify_log(audit.db, audit.signer)
    return {chain.chain: None if chain.tamper is None else (chain.tamper.kind, chain.tamper.pos)
            for chain in report.chains}


def verdict(audit: AuditLog, chain: str = T1) -> tuple[TamperKind, int] | None:
    return verdicts(audit)[chain]


def test_an_untouched_log_verifies_chain_by_chain(audit: AuditLog) -> None:
    assert verify_log(audit.db, audit.signer).chains == ()  # empty, never signed
    record(audit, 5)
    record(audit, 2, tenant="t2")
    record(audit, 1, tenant=None)
    report = verify_log(audit.db, audit.signer)
    assert report.ok and report.entries == 5 + 2 + 3  # the deployment chain opened t1 and t2
    assert [(c.chain, c.entries, c.first_pos, c.head_pos) for c in report.chains] == [
        (DEPLOYMENT, 3, 1, 3), (T1, 5, 1, 5), (T2, 2, 1, 2)]


def test_each_chain_is_opened_in_the_deployment_chain(audit: AuditLog) -> None:
    record(audit, 2)
    record(audit, 1, tenant=None)
    opened = entry(audit.db, DEPLOYMENT, 1)
    assert (opened.action, opened.target_id, opened.tenant_id) == (
        AuditAction.CHAIN_OPENED, T1, None)
    assert entry(audit.db, DEPLOYMENT, 2).action == AuditAction.JOB_RESULT_READ


def test_canonical_form_is_sorted_compact_utf8_json_naming_chain_and_position(
    audit: AuditLog,
) -> None:
    audit.record(AuditEvent(AuditAction.KEY_CREATED, Actor(name="clé", tenant_id="t1")))
    row = entry(audit.db, T1, 1)
    raw = canonical(fields_of(row))
    assert raw.startswith(b'{"action":"key:api_key:created","actor_key_id":null,'
                          b'"actor_name":"cl\xc3\xa9","at":"2030-01-01T12:00:00.000000Z",'
                          b'"chain":"tenant:t1","client_ip":null')
    assert b'"pos":1,' in raw and b'"seq"' not in raw
    assert b" " not in raw and row.prev_hash == GENESIS


@pytest.mark.parametrize(
    ("column", "value"),
    [("target_id", "job-other"), ("actor_name", "someone else"), ("action", "job:data:deleted"),
     ("at", "2029-01-01 00:00:00.000000"), ("prev_hash", "f" * 64), ("mac", "0" * 64),
     ("tenant_id", "t2")],
)
def test_changing_any_field_of_an_entry_names_that_entry_in_its_chain_only(
    audit: AuditLog, column: str, value: str,
) -> None:
    record(audit, 6)
    record(audit, 3, tenant="t2")
    sql(audit.db, f"UPDATE audit_entries SET {column} = :v WHERE chain = :c AND pos = 3",
        v=value, c=T1)
    assert verdicts(audit) == {T1: (TamperKind.CHANGED, 3), T2: None, DEPLOYMENT: None}


def test_a_rewrite_that_recomputes_every_hash_is_caught_by_the_signatures(
    audit: AuditLog,
) -> None:
    record(audit, 6)
    sql(audit.db, "UPDATE audit_entries SET target_id = 'job-x' WHERE chain = :c AND pos = 2",
        c=T1)
    link = entry_hash(entry(audit.db, T1, 2))
    for pos in range(3, 7):  # relink everything after it, as an attacker would
        sql(audit.db, "UPDATE audit_entries SET prev_hash = :h WHERE chain = :c AND pos = :p",
            h=link, c=T1, p=pos)
        link = entry_hash(entry(audit.db, T1, pos))
    sql(audit.db, "UPDATE audit_chains SET head_hash = :h WHERE chain = :c", h=link, c=T1)
    assert verdict(audit) == (TamperKind.CHANGED, 2)


def test_removing_an_entry_in_the_middle_names_it(audit: AuditLog) -> None:
    record(audit, 6)
    record(audit, 6, tenant="t2")
    sql(audit.db, "DELETE FROM audit_entries WHERE chain = :c AND pos = 4", c=T1)
    assert verdicts(audit) == {T1: (TamperKind.REMOVED, 4), T2: None, DEPLOYMENT: None}


def test_removing_the_newest_entries_is_caught_by_the_signed_head(audit: AuditLog) -> None:
    record(audit, 6)
    sql(audit.db, "DELETE FROM audit_entries WHERE chain = :c AND pos >= 5", c=T1)
    assert verdict(audit) == (TamperKind.REMOVED, 5)


def test_inserting_an_entry_between_two_names_it(audit: AuditLog) -> None:
    record(audit, 6)
    for pos in range(6, 3, -1):  # make room at 4, as an attacker would
        sql(audit.db, "UPDATE audit_entries SET pos = pos + 1, "  # ids fit VARCHAR(36)
            "id = 'moved-' || CAST(pos AS VARCHAR(20)) WHERE chain = :c AND pos = :p",
            c=T1, p=pos)
    link = entry_hash(entry(audit.db, T1, 3))
    forge(audit.db, T1, 3, pos=4, id="forged", action="job:data:deleted", prev_hash=link)
    assert verdict(audit) == (TamperKind.INSERTED, 4)


def test_appending_past_the_signed_head_names_the_entry(audit: AuditLog) -> None:
    record(audit, 3)
    forge(audit.db, T1, 3, pos=4, id="forged")
    assert verdict(audit) == (TamperKind.INSERTED, 4)


def test_moving_the_head_without_the_key_is_caught(audit: AuditLog) -> None:
    record(audit, 3)
    sql(audit.db, "DELETE FROM audit_entries WHERE chain = :c AND pos = 3", c=T1)
    second = entry(audit.db, T1, 2)
    sql(audit.db, "UPDATE audit_chains SET head_pos = 2, head_hash = :h WHERE chain = :c",
        h=entry_hash(second), c=T1)
    assert verdict(audit) == (TamperKind.HEAD, 2)


def test_an_entry_moved_to_another_tenants_chain_breaks_both(audit: AuditLog) -> None:
    record(audit, 4)
    record(audit, 2, tenant="t2")
    # Moved to the end of t2's chain and made to link there and name t2, as an attacker would.
    link = entry_hash(entry(audit.db, T2, 2))
    sql(audit.db, "UPDATE audit_entries SET chain = :to, pos = 3, tenant_id = 't2', "
        "prev_hash = :h WHERE chain = :c AND pos = 2", to=T2, h=link, c=T1)
    assert verdicts(audit) == {T1: (TamperKind.REMOVED, 2), T2: (TamperKind.INSERTED, 3),
                               DEPLOYMENT: None}


def test_an_entry_moved_into_another_chains_place_is_changed_there(audit: AuditLog) -> None:
    record(audit, 3)
    record(audit, 3, tenant="t2")
    sql(audit.db, "DELETE FROM audit_entries WHERE chain = :c AND pos = 2", c=T2)
    sql(audit.db, "UPDATE audit_entries SET chain = :to WHERE chain = :c AND pos = 2",
        to=T2, c=T1)
    assert verdicts(audit) == {T1: (TamperKind.REMOVED, 2), T2: (TamperKind.CHANGED, 2),
                               DEPLOYMENT: None}


def test_a_chain_deleted_whole_is_missed_by_its_opening(audit: AuditLog) -> None:
    record(audit, 3)
    record(audit, 3, tenant="t2")
    sql(audit.db, "DELETE FROM audit_entries WHERE chain = :c", c=T1)
    sql(audit.db, "DELETE FROM audit_chains WHERE chain = :c", c=T1)
    assert verdicts(audit) == {T1: (TamperKind.MISSING, 0), T2: None, DEPLOYMENT: None}


def test_entries_left_without_their_chain_head_are_reported(audit: AuditLog) -> None:
    record(audit, 3)
    sql(audit.db, "DELETE FROM audit_chains WHERE chain = :c", c=T1)
    sql(audit.db, "DELETE FROM audit_entries WHERE chain = :c", c=DEPLOYMENT)
    assert verdict(audit) == (TamperKind.MISSING, 0)


def test_concurrent_appends_never_fork_a_chain(audit: AuditLog) -> None:
    # Eight threads: four tenants of their own, four sharing one tenant.
    tenants = ["t1", "t2", "t3", "t4", "shared", "shared", "shared", "shared"]
    threads = [threading.Thread(target=record, args=(audit, 25, tenant)) for tenant in tenants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = verify_log(audit.db, audit.signer)
    assert report.ok
    assert report.chain("tenant:shared").entries == report.chain("tenant:shared").head_pos == 100
    assert all(report.chain(f"tenant:t{n}").head_pos == 25 for n in range(1, 5))
    assert report.chain(DEPLOYMENT).entries == 5  # each chain opened once


def test_retention_cuts_each_chain_and_leaves_each_verifiable(audit: AuditLog,
                                                              clock: FakeClock) -> None:
    record(audit, 4)
    record(audit, 2, tenant="t2")
    clock.advance(timedelta(days=20))
    record(audit, 3)
    clock.advance(timedelta(days=15))  # the first 4 of t1, both of t2 are past the 30 days
    assert audit.purge_expired() == 4 + 2 + 2  # and the deployment chain's two openings
    assert audit.purge_expired() == 0
    report = verify_log(audit.db, audit.signer)
    assert report.ok
    assert (report.chain(T1).first_pos, report.chain(T1).entries) == (5, 3)
    assert (report.chain(T2).first_pos, report.chain(T2).entries) == (3, 0)
    purges = [e.target_id for e in _all(audit.db, DEPLOYMENT)
              if e.action == AuditAction.AUDIT_PURGED]
    assert purges == [f"{DEPLOYMENT}@2", f"{T1}@4", f"{T2}@2"]
    sql(audit.db, "DELETE FROM audit_entries WHERE chain = :c AND pos = 5", c=T1)  # oldest kept
    assert verdict(audit) == (TamperKind.REMOVED, 5)


def _all(db: Database, chain: str) -> list[StoredEntry]:
    with db.transaction() as session:
        return AuditRepository(session).in_chain(chain, 0, 1000)


def test_a_forged_retention_checkpoint_is_caught(audit: AuditLog, clock: FakeClock) -> None:
    record(audit, 4)
    clock.advance(timedelta(days=31))
    record(audit, 2)
    audit.purge_expired()
    sixth = entry(audit.db, T1, 6)
    # Hide the removal of entry 5 behind a moved checkpoint.
    sql(audit.db, "DELETE FROM audit_entries WHERE chain = :c AND pos = 5", c=T1)
    sql(audit.db, "UPDATE audit_chains SET anchor_pos = 5, anchor_hash = :h WHERE chain = :c",
        h=sixth.prev_hash, c=T1)
    assert verdict(audit) == (TamperKind.CHECKPOINT, 5)
    clock.advance(timedelta(days=31))
    with pytest.raises(IntegrityError):  # and retention does not sign it over
        audit.purge_expired()
    assert verdict(audit) == (TamperKind.CHECKPOINT, 5)


def test_retention_refuses_to_cut_away_a_tampered_entry_but_cuts_other_chains(
    audit: AuditLog, clock: FakeClock,
) -> None:
    record(audit, 4)
    record(audit, 4, tenant="t2")
    sql(audit.db, "UPDATE audit_entries SET target_id = 'x' WHERE chain = :c AND pos = 2", c=T1)
    clock.advance(timedelta(days=31))
    with pytest.raises(IntegrityError, match="tenant:t1"):
        audit.purge_expired()
    assert verdict(audit) == (TamperKind.CHANGED, 2)
    report = verify_log(audit.db, audit.signer).chain(T2)
    assert report.ok and report.first_pos == 5 and report.entries == 0


def test_an_export_checks_offline_chain_by_chain(audit: AuditLog, clock: FakeClock) -> None:
    record(audit, 3)
    clock.advance(timedelta(days=31))
    record(audit, 2, tenant="t2")
    record(audit, 2)
    audit.purge_expired()  # t1's chain now starts after a checkpoint
    lines = list(AuditService(audit.db, audit).export(Actor.system("test")))
    links: dict[str, list[tuple[str, str]]] = {}
    for line in lines:
        fields = {k: v for k, v in line.items() if k not in ("hash", "mac", "mac_version")}
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":"),
                                           ensure_ascii=False).encode()).hexdigest()
        assert digest == line["hash"]
        links.setdefault(str(line["chain"]), []).append((str(line["prev_hash"]), digest))
    assert [chain for chain in links] == [DEPLOYMENT, T1, T2]  # each chain whole, in turn
    # deployment: t2's opening, the cuts of itself (t1's opening) and of t1, the export
    assert [len(chain) for chain in links.values()] == [4, 2, 2]
    for chain in links.values():
        assert all(after[0] == before[1] for before, after in pairwise(chain))

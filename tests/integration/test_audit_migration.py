"""Migration 0007 (per-tenant chains) on a log written as one chain: what was signed
before still verifies, unchanged, as the chain ``legacy``; what was tampered with before
is still caught; new entries go to tenants' chains after the old ones; retention and the
way back (while nothing was written to the new chains) keep it all verifiable.

The old log is written here from the old format's definition (fields with ``seq``, the
head and checkpoint messages without a chain name), not by the code under test.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditLog, ChainSigner, verify_log
from ocrvault.audit.chain import DEPLOYMENT, LEGACY
from ocrvault.crypto import FileKeyringProvider, Keyring, MacPurpose
from ocrvault.environments import Environment
from ocrvault.store.audit import AuditRepository
from ocrvault.store.db import MIGRATIONS_DIR, Database
from tests.clocks import EPOCH, FakeClock
from tests.databases import TestDatabases

BEFORE = "0007"
# The old log: seq 1 was cut by retention (its checkpoint is signed), 2..5 remain.
TENANTS = {1: "t1", 2: "t1", 3: "t2", 4: "t1", 5: "t2"}


def move(db: Database, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def write_single_chain_log(db: Database, keyring: Keyring) -> None:
    """Five entries as the single-chain code wrote them, the first cut by retention."""
    def sign(message: str) -> tuple[int, str]:
        version, tag = keyring.mac(MacPurpose.AUDIT_CHAIN, message.encode("ascii"))
        return version, tag.hex()

    digests, previous = {}, "0" * 64
    with db.engine.begin() as connection:
        for seq, tenant in TENANTS.items():
            at = EPOCH + timedelta(minutes=seq)
            fields = {"seq": seq, "id": str(uuid.uuid4()),
                      "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "tenant_id": tenant,
                      "environment": "live", "actor_key_id": "k1", "actor_name": "key one",
                      "action": "job:result:read", "target_id": f"job-{seq}",
                      "client_ip": "192.0.2.1", "request_id": None, "outcome": "success",
                      "reason": None, "detail": None, "prev_hash": previous}
            digest = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":"),
                                               ensure_ascii=False).encode()).hexdigest()
            version, mac = sign(f"entry:{digest}")
            connection.execute(text(
                "INSERT INTO audit_entries (seq, id, at, tenant_id, environment, actor_key_id, "
                "actor_name, action, target_id, client_ip, request_id, outcome, reason, detail,"
                " prev_hash, mac_version, mac) VALUES (:seq, :id, :at, :tenant_id, "
                ":environment, :actor_key_id, :actor_name, :action, :target_id, :client_ip, "
                ":request_id, :outcome, :reason, :detail, :prev_hash, :version, :mac)"),
                {**fields, "at": at.replace(tzinfo=None), "version": version, "mac": mac})
            digests[seq], previous = digest, digest
        connection.execute(text("DELETE FROM audit_entries WHERE seq = 1"))
        head_version, head_mac = sign(f"head:5:{digests[5]}")
        anchor_version, anchor_mac = sign(f"anchor:1:{digests[1]}")
        connection.execute(text(
            "UPDATE audit_chain SET head_seq = 5, head_hash = :hh, head_mac_version = :hv, "
            "head_mac = :hm, anchor_seq = 1, anchor_hash = :ah, anchor_mac_version = :av, "
            "anchor_mac = :am WHERE id = 1"),
            {"hh": digests[5], "hv": head_version, "hm": head_mac, "ah": digests[1],
             "av": anchor_version, "am": anchor_mac})


@pytest.fixture
def old_log(databases: TestDatabases, tmp_path: Path) -> Iterator[tuple[Database, AuditLog]]:
    """A database before per-tenant chains (0007) holding the old single chain, and the
    log that will read it."""
    db = Database(databases.url(tmp_path))
    try:
        move(db, BEFORE)
        keyring = Keyring(FileKeyringProvider(tmp_path / "keyring.json"))
        write_single_chain_log(db, keyring)
        yield db, AuditLog(db, ChainSigner(keyring), FakeClock(EPOCH + timedelta(hours=1)),
                           retention=timedelta(days=30))
    finally:
        db.dispose()


def record(audit: AuditLog, tenant: str | None) -> None:
    audit.record(AuditEvent(AuditAction.JOB_RESULT_READ,
                            Actor(name="key one", tenant_id=tenant,
                                  environment=Environment.LIVE, key_id="k1")))


def test_the_single_chain_verifies_as_legacy_after_the_upgrade(
    old_log: tuple[Database, AuditLog],
) -> None:
    db, audit = old_log
    db.migrate()
    legacy = verify_log(db, audit.signer).chain(LEGACY)
    assert legacy.ok and (legacy.first_pos, legacy.head_pos, legacy.entries) == (2, 5, 4)


def test_new_entries_go_to_tenant_chains_after_the_old_ones_and_legacy_stays_closed(
    old_log: tuple[Database, AuditLog],
) -> None:
    db, audit = old_log
    db.migrate()
    record(audit, "t1")
    record(audit, None)
    report = verify_log(db, audit.signer)
    assert report.ok
    assert {c.chain: c.head_pos for c in report.chains} == {
        LEGACY: 5, "tenant:t1": 1, DEPLOYMENT: 2}
    with db.transaction() as session:
        t1 = AuditRepository(session).page("t1", ["live"], after_seq=0, limit=10)
    # The tenant's listing runs on from its old entries; no seq is reused.
    assert [(e.chain, e.pos) for e in t1] == [(LEGACY, 2), (LEGACY, 4), ("tenant:t1", 1)]
    assert t1[-1].seq > 5


def test_an_entry_tampered_before_the_upgrade_is_still_caught_after_it(
    old_log: tuple[Database, AuditLog],
) -> None:
    db, audit = old_log
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_entries SET target_id = 'job-x' WHERE seq = 3"))
    db.migrate()
    legacy = verify_log(db, audit.signer).chain(LEGACY)
    assert legacy.tamper is not None and str(legacy.tamper) == "entry 3 was changed"


def test_retention_cuts_the_legacy_chain_and_leaves_it_verifiable(
    old_log: tuple[Database, AuditLog],
) -> None:
    db, audit = old_log
    db.migrate()
    assert isinstance(audit.clock, FakeClock)
    audit.clock.advance(timedelta(days=31))
    assert audit.purge_expired() == 4
    report = verify_log(db, audit.signer)
    assert report.ok
    legacy = report.chain(LEGACY)
    assert (legacy.first_pos, legacy.head_pos, legacy.entries) == (6, 5, 0)


def test_the_way_back_keeps_the_log_and_is_refused_once_tenant_chains_exist(
    old_log: tuple[Database, AuditLog],
) -> None:
    db, audit = old_log
    db.migrate()
    move(db, BEFORE, down=True)
    with db.engine.begin() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM audit_entries")).scalar() == 4
    db.migrate()
    assert verify_log(db, audit.signer).chain(LEGACY).ok
    record(audit, "t1")
    with pytest.raises(RuntimeError, match="re-signing"):
        move(db, BEFORE, down=True)
    assert verify_log(db, audit.signer).ok


def test_a_fresh_install_has_no_legacy_chain(databases: TestDatabases, tmp_path: Path) -> None:
    db = Database(databases.url(tmp_path))
    db.migrate()
    with db.transaction() as session:
        assert AuditRepository(session).chain_names() == []
    db.dispose()

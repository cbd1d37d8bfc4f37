"""The outbox's claim under a lease, on the test's database (SQLite, or PostgreSQL in the
PostgreSQL run: tests/databases.py): of several dispatchers asking for one delivery exactly one
gets it, a lease that ran out passes the delivery on, and an outcome is written only by
the holder of the lease it was claimed under."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect

from ocrvault.environments import Environment
from ocrvault.store.commands import (
    AttemptOutcome,
    NewTenant,
    NewWebhookEndpoint,
    NewWebhookMessage,
)
from ocrvault.store.db import Database, code_revisions
from ocrvault.store.records import ClaimedDelivery
from ocrvault.store.repository import TenantRepository
from ocrvault.store.webhooks import WebhookRepository
from tests.clocks import FakeClock
from tests.databases import TestDatabases
from tests.integration.test_audit_migration import move

LEASE = timedelta(seconds=60)


@pytest.fixture
def db(databases: TestDatabases, tmp_path: Path) -> Database:
    return databases.open(tmp_path)


def one_pending_delivery(db: Database, clock: FakeClock) -> str:
    with db.transaction() as session:
        TenantRepository(session).add(NewTenant("t1", "acme", clock()))
        webhooks = WebhookRepository(session)
        webhooks.add_endpoint(NewWebhookEndpoint(
            id="e1", tenant_id="t1", environment=Environment.LIVE, url="https://1.1.1.1/",
            events=("job.succeeded",), description=None, sealed_secret=b"sealed",
            created_at=clock(), created_by=None))
        webhooks.add_message(NewWebhookMessage(
            id="msg_1", tenant_id="t1", environment=Environment.LIVE, type="job.succeeded",
            job_id=None, body="{}", created_at=clock(), endpoint_ids=("e1",)))
        (delivery_id,) = webhooks.due_ids(clock(), 10)
    return delivery_id


def claim(db: Database, delivery_id: str, owner: str, clock: FakeClock) -> ClaimedDelivery | None:
    with db.transaction() as session:
        return WebhookRepository(session).claim(delivery_id, owner, clock(), LEASE)


def record(db: Database, claimed: ClaimedDelivery, owner: str, clock: FakeClock) -> bool:
    with db.transaction() as session:
        return WebhookRepository(session).record_attempt(AttemptOutcome(
            delivery_id=claimed.id, owner=owner, attempt=claimed.attempt, endpoint_id="e1",
            message_id=claimed.message_id, event_type=claimed.event_type, at=clock(),
            succeeded=True, status_code=204, latency_ms=3, error=None, retry_at=None,
            failing_after=10))


def test_a_claimed_delivery_is_nobody_elses_until_its_lease_runs_out(db: Database) -> None:
    clock = FakeClock()
    delivery_id = one_pending_delivery(db, clock)
    first = claim(db, delivery_id, "a", clock)
    assert first is not None and first.attempt == 1 and first.endpoint.id == "e1"
    assert claim(db, delivery_id, "b", clock) is None
    with db.transaction() as session:
        assert WebhookRepository(session).due_ids(clock(), 10) == []
    assert not record(db, first, "b", clock)  # b holds no lease on it

    clock.advance(LEASE + timedelta(seconds=1))  # a died mid-attempt: its lease runs out
    second = claim(db, delivery_id, "b", clock)
    assert second is not None and second.attempt == 2
    assert not record(db, first, "a", clock)  # a's late outcome is not written over b's
    assert record(db, second, "b", clock)
    with db.transaction() as session:
        log = WebhookRepository(session).attempts_for("e1", 10)
        assert WebhookRepository(session).due_ids(clock() + timedelta(days=1), 10) == []
    assert [(entry.attempt, entry.status_code, entry.outcome) for entry in log] == [
        (2, 204, "succeeded")]


def test_of_many_dispatchers_claiming_at_once_exactly_one_wins(db: Database) -> None:
    clock = FakeClock()
    delivery_id = one_pending_delivery(db, clock)
    start = threading.Barrier(8)
    won: list[str] = []

    def race(owner: str) -> None:
        start.wait()
        if claim(db, delivery_id, owner, clock) is not None:
            won.append(owner)

    threads = [threading.Thread(target=race, args=(f"node-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1


def test_the_webhook_migration_goes_down_and_up_again(db: Database) -> None:
    webhook_tables = {"webhook_endpoints", "webhook_messages", "webhook_deliveries",
                      "webhook_attempts", "webhook_job_targets"}
    move(db, "0009", down=True)
    assert not webhook_tables & set(inspect(db.engine).get_table_names())
    move(db, "head")
    assert webhook_tables <= set(inspect(db.engine).get_table_names())
    assert db.schema_revisions() == code_revisions()

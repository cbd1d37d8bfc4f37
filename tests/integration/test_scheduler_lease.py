"""Periodic work runs once per cluster: schedulers take a lease in the database (a row with
owner and expiry), so of two started on one database only one runs the tasks, and the
other takes over when the holder stops or its lease runs out. The lock is checked on
SQLite and on PostgreSQL (the machine's server, in a schema of its own)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from ocrvault.compose.scheduler import LEASE_TICKS, SchedulerNode
from ocrvault.config import Settings
from ocrvault.store.db import Database
from ocrvault.store.locks import ClusterLock
from ocrvault.store.tables import ClusterLockRow
from tests.clocks import FakeClock
from tests.conftest import migrated

LEASE = timedelta(seconds=30)
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_or_skip() -> None:
    import psycopg

    try:
        psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test",
                        connect_timeout=3).close()
    except psycopg.OperationalError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({error})")


@pytest.fixture(params=["sqlite", "postgresql"])
def lock_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('locks') / 'locks.db'}")
        ClusterLockRow.__table__.create(db.engine)
        yield db
        db.dispose()
        return
    _postgres_or_skip()
    schema = f"core_locks_{uuid.uuid4().hex[:8]}"  # this branch's own name space
    admin = Database(PG_SERVER)
    with admin.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(f"{PG_SERVER}?options=-csearch_path%3D{schema}")
    try:
        ClusterLockRow.__table__.create(db.engine)
        yield db
    finally:
        db.dispose()
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def lock(db: Database, owner: str, clock: FakeClock) -> ClusterLock:
    return ClusterLock(db, "scheduler", owner, LEASE, clock)


def test_of_two_owners_one_holds_the_lock_and_renews_it(lock_db: Database) -> None:
    clock = FakeClock()
    first, second = lock(lock_db, "a", clock), lock(lock_db, "b", clock)
    assert first.hold()
    assert not second.hold()
    clock.advance(LEASE - timedelta(seconds=1))
    assert first.hold()  # renewed for another lease from now
    clock.advance(LEASE - timedelta(seconds=1))
    assert not second.hold()


def test_a_released_lock_is_taken_by_the_other_at_once(lock_db: Database) -> None:
    clock = FakeClock()
    first, second = lock(lock_db, "a", clock), lock(lock_db, "b", clock)
    assert first.hold()
    first.release()
    assert second.hold()
    assert not first.hold()


def test_a_lapsed_lease_is_taken_over_and_its_old_holder_has_lost_it(lock_db: Database) -> None:
    clock = FakeClock()
    first, second = lock(lock_db, "a", clock), lock(lock_db, "b", clock)
    assert first.hold()
    clock.advance(LEASE)
    assert second.hold()
    assert not first.hold()


def test_owners_racing_for_a_free_or_lapsed_lock_never_both_win(lock_db: Database) -> None:
    clock = FakeClock()
    owners = [lock(lock_db, name, clock) for name in ("a", "b", "c")]
    for _round in range(15):
        clock.advance(LEASE)  # whoever held it has lapsed: all three may take it
        start = threading.Barrier(len(owners))
        won: list[str] = []

        def race(contender: ClusterLock, start: threading.Barrier = start,
                 won: list[str] = won) -> None:
            start.wait()
            if contender.hold():
                won.append(contender.owner)

        threads = [threading.Thread(target=race, args=(owner,)) for owner in owners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, won


# -- two scheduler compositions on one database -------------------------------------------

@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def schedulers(settings: Settings, clock: FakeClock) -> Iterator[list[SchedulerNode]]:
    migrated(settings)
    nodes = [SchedulerNode.open(settings, clock=clock, owner=name) for name in ("one", "two")]
    yield nodes
    for node in nodes:
        node.stop()


def test_of_two_schedulers_on_one_database_only_one_runs_the_periodic_tasks(
        schedulers: list[SchedulerNode]) -> None:
    one, two = schedulers
    for _tick in range(3):
        assert one.tick()
        assert not two.tick()
    assert (one.reaper.stats.runs, two.reaper.stats.runs) == (3, 0)


def test_when_the_holder_stops_the_other_scheduler_takes_over(
        schedulers: list[SchedulerNode]) -> None:
    one, two = schedulers
    assert one.tick()
    one.stop()
    assert two.tick()
    assert (one.reaper.stats.runs, two.reaper.stats.runs) == (1, 1)


def test_when_the_holders_lease_runs_out_the_other_scheduler_takes_over(
        schedulers: list[SchedulerNode], settings: Settings, clock: FakeClock) -> None:
    one, two = schedulers
    assert one.tick()
    clock.advance(timedelta(seconds=LEASE_TICKS * settings.reaper_interval_seconds))
    assert two.tick()  # the holder missed its ticks (it hung, or died)
    assert not one.tick()
    assert (one.reaper.stats.runs, two.reaper.stats.runs) == (1, 1)

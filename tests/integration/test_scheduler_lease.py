"""Periodic work runs once per cluster: schedulers take a lease in the database (a row with
owner and expiry), so of two started on one database only one runs the tasks, and the
other takes over when the holder stops or its lease runs out. The lock is checked on
the test's database: SQLite, or PostgreSQL in the PostgreSQL run (tests/databases.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from ocrvault.compose.scheduler import LEASE_TICKS, SchedulerNode
from ocrvault.config import Settings
from ocrvault.store.db import Database
from ocrvault.store.locks import ClusterLock
from ocrvault.store.tables import ClusterLockRow
from tests.clocks import FakeClock
from tests.conftest import migrated
from tests.databases import TestDatabases

LEASE = timedelta(seconds=30)


@pytest.fixture
def lock_db(databases: TestDatabases, tmp_path: Path) -> Database:
    db = databases.open(tmp_path, migrated=False)
    ClusterLockRow.__table__.create(db.engine)
    return db


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

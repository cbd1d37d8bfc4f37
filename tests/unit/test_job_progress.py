"""Progress is written to the job row cheaply: at most every PROGRESS_INTERVAL seconds."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast

from ocrvault.jobs.leases import Lease, LeaseKeeper
from ocrvault.jobs.worker import PROGRESS_INTERVAL, JobWorker
from tests.clocks import FakeClock


class CountingDatabase:
    """Records the pages-done values written; nothing is stored."""

    def __init__(self) -> None:
        self.written: list[int] = []

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        yield self

    def execute(self, statement: Any) -> Any:
        self.written.append(statement.compile().params["pages_done"])
        return SimpleNamespace(rowcount=1)  # the lease still held


def test_progress_is_written_at_most_every_interval_and_never_for_the_last_page() -> None:
    db = CountingDatabase()
    clock = FakeClock()
    worker = JobWorker(cast(Any, None), cast(Any, db), cast(Any, None), cast(Any, None),
                       clock, audit=cast(Any, None), leases=LeaseKeeper(cast(Any, db), clock, 60))
    ticks = itertools.count(0.0, PROGRESS_INTERVAL / 4)  # four pages per interval
    advance = worker._progress(Lease("job", "holder"), monotonic=lambda: next(ticks))
    for done in range(1, 1001):
        advance(done, 1000)
    # Page 1 at once, then one page in four; page 1000 is recorded with the outcome.
    assert db.written == list(range(1, 1000, 4))

"""The page pool: a job's pages on every worker, results in page order, the first failing
page's error, withdrawn jobs stopped, and tenants served in turn page by page."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from ocrvault.jobs import pages
from ocrvault.jobs.pages import JobWithdrawn, PagedJob, PageLine, PagePool, PageTask

WAIT = 10.0  # seconds a broken test waits before failing instead of hanging


@pytest.fixture
def make_pool() -> Iterator[Callable[[int], PagePool]]:
    pools: list[PagePool] = []

    def make(workers: int) -> PagePool:
        pools.append(PagePool(workers))
        pools[-1].start()
        return pools[-1]

    yield make
    for pool in pools:
        pool.stop()


def test_two_workers_read_two_pages_of_one_job_at_once(
        make_pool: Callable[[int], PagePool]) -> None:
    both_inside = threading.Barrier(2, timeout=WAIT)  # broken unless two pages run together

    def read(index: int) -> int:
        if index < 2:
            both_inside.wait()
        return index * 10

    assert make_pool(2).run(PagedJob("job", "acme", 6, read)) == [0, 10, 20, 30, 40, 50]


def test_results_keep_page_order_when_pages_finish_out_of_order(
        make_pool: Callable[[int], PagePool]) -> None:
    second_done = threading.Event()
    finished: list[int] = []

    def read(index: int) -> str:
        if index == 0:
            assert second_done.wait(WAIT)
        finished.append(index)
        if index == 1:
            second_done.set()
        return f"page {index}"

    assert make_pool(2).run(PagedJob("job", "acme", 3, read)) == ["page 0", "page 1", "page 2"]
    assert finished.index(1) < finished.index(0)


def test_a_failing_page_fails_the_job_with_its_error_and_no_later_page_starts(
        make_pool: Callable[[int], PagePool]) -> None:
    started: list[int] = []

    def read(index: int) -> int:
        started.append(index)
        if index == 3:
            raise ValueError("page 4 is damaged")
        return index

    with pytest.raises(ValueError, match="page 4 is damaged"):
        make_pool(1).run(PagedJob("job", "acme", 10, read))
    assert started == [0, 1, 2, 3]


def test_of_two_pages_failing_at_once_the_earlier_pages_error_is_raised(
        make_pool: Callable[[int], PagePool]) -> None:
    both_inside = threading.Barrier(2, timeout=WAIT)

    def read(index: int) -> int:
        both_inside.wait()
        raise ValueError(f"page {index + 1} failed")

    with pytest.raises(ValueError, match="page 1 failed"):
        make_pool(2).run(PagedJob("job", "acme", 5, read))


def test_a_job_withdrawn_mid_way_starts_no_further_page(
        make_pool: Callable[[int], PagePool]) -> None:
    started: list[int] = []
    wanted = iter([True, False])  # asked before the second and the third page

    def read(index: int) -> int:
        started.append(index)
        return index

    with pytest.raises(JobWithdrawn):
        make_pool(1).run(PagedJob("job", "acme", 10, read, lambda: next(wanted)))
    assert started == [0, 1]


def test_a_one_page_job_is_never_checked_for_withdrawal(
        make_pool: Callable[[int], PagePool]) -> None:
    def unwanted() -> bool:
        raise AssertionError("a one-page job costs no check")

    assert make_pool(1).run(PagedJob("job", "acme", 1, lambda index: "one", unwanted)) == ["one"]


def test_progress_is_reported_on_the_owners_thread_page_by_page(
        make_pool: Callable[[int], PagePool]) -> None:
    reports: list[tuple[int, int, str]] = []
    reported = threading.Condition()

    def on_page(done: int, total: int) -> None:
        with reported:
            reports.append((done, total, threading.current_thread().name))
            reported.notify_all()

    def read(index: int) -> int:
        with reported:  # each page waits for the report of the one before
            assert reported.wait_for(lambda: len(reports) >= index, WAIT)
        return index

    make_pool(1).run(PagedJob("job", "acme", 8, read), on_page)
    owner = threading.current_thread().name
    # The last page is not reported: the job's outcome records it.
    assert reports == [(done, 8, owner) for done in range(1, 8)]


def test_tenants_take_turns_page_by_page_and_a_tenants_jobs_take_turns() -> None:
    line = PageLine()
    line.put("big", "tenant-a", 2000)
    line.put("receipt", "tenant-b", 2)
    line.put("small", "tenant-a", 2)

    order = [line.pop() for _ in range(7)]

    assert order == [PageTask("big", 0), PageTask("receipt", 0), PageTask("small", 0),
                     PageTask("receipt", 1), PageTask("big", 1), PageTask("small", 1),
                     PageTask("big", 2)]


def test_a_dropped_job_hands_out_no_more_pages() -> None:
    line = PageLine()
    line.put("failed", "tenant-a", 10)
    line.put("other", "tenant-b", 1)
    assert line.pop() == PageTask("failed", 0)
    line.drop("failed")
    assert line.pop() == PageTask("other", 0)
    assert not line


def test_another_tenants_page_is_read_next_while_a_long_job_runs(
        make_pool: Callable[[int], PagePool]) -> None:
    pool = make_pool(1)
    first_page_held, release = threading.Event(), threading.Event()
    order: list[str] = []

    def long_read(index: int) -> int:
        order.append(f"long {index}")
        if index == 0:
            first_page_held.set()
            assert release.wait(WAIT)
        return index

    long_job = threading.Thread(
        target=pool.run, args=(PagedJob("long", "tenant-a", 2000, long_read),))
    long_job.start()
    assert first_page_held.wait(WAIT)
    receipt = threading.Thread(target=pool.run, args=(PagedJob(
        "receipt", "tenant-b", 1, lambda index: order.append("receipt 0")),))
    receipt.start()
    assert pool.wait_open(2, WAIT)  # the receipt's job is in line behind the held page
    release.set()
    receipt.join(WAIT)
    long_job.join(60)

    # The long job's tenant had its turn queued before the receipt came: one page, then
    # the receipt, of 2,000.
    assert order[:3] == ["long 0", "long 1", "receipt 0"]


def test_start_returns_once_every_page_thread_has_warmed_up_on_itself() -> None:
    warmed: list[str] = []
    lock = threading.Lock()

    def warm() -> None:
        with lock:
            warmed.append(threading.current_thread().name)

    pool = PagePool(2)
    pool.start(warm)
    try:
        assert sorted(warmed) == ["ocr-page-0", "ocr-page-1"]
    finally:
        pool.stop()


def test_a_failing_warm_up_leaves_the_pool_reading_pages() -> None:
    def warm() -> None:
        raise RuntimeError("no model")

    pool = PagePool(1)
    pool.start(warm)
    try:
        assert pool.run(PagedJob("job", "acme", 2, lambda index: index)) == [0, 1]
    finally:
        pool.stop()


def test_freed_memory_goes_back_once_no_page_waits_not_after_every_page(
        make_pool: Callable[[int], PagePool], monkeypatch: pytest.MonkeyPatch) -> None:
    """A trim between pages costs the next page 3 to 8% more CPU (faulting the memory in
    again); once the pool is idle it costs nothing, and the heap goes back to its base."""
    trims: list[int] = []
    read: list[int] = []
    monkeypatch.setattr(pages, "release_free_memory", lambda: trims.append(len(read)))
    pool = make_pool(1)

    def page(index: int) -> int:
        read.append(index)
        return index

    assert pool.run(PagedJob("job", "acme", 8, page)) == list(range(8))
    assert pool.run(PagedJob("next", "acme", 3, page)) == list(range(3))
    pool.stop()  # its thread trims after handing the last page over

    assert trims == [8, 11]  # after the last page of each job, when nothing waited

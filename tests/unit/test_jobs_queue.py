"""The in-process queue: fair between tenants, and a stop waits for the job in progress,
not for the whole queue."""

from __future__ import annotations

import threading
import time

from ocrvault.jobs.queue import FairLine, LocalQueue


def test_stop_finishes_the_running_job_and_leaves_the_waiting_ones() -> None:
    started, release = threading.Event(), threading.Event()
    handled: list[str] = []

    def handler(job_id: str) -> None:
        started.set()
        release.wait(10)
        handled.append(job_id)

    local = LocalQueue(workers=1)
    local.start(handler)
    for number in range(5):
        local.enqueue(f"job-{number}", "acme")
    assert started.wait(10)
    stopping = threading.Thread(target=local.stop)
    stopping.start()
    stopping.join(0.2)
    assert stopping.is_alive()  # waiting for the job in progress
    release.set()
    stopping.join(10)

    assert not stopping.is_alive()
    assert handled == ["job-0"]  # the other four stay queued in the database for the next start


def test_tenants_are_served_in_turn_and_each_tenants_jobs_in_order() -> None:
    line = FairLine()
    for number in range(1000):
        line.put(f"a{number}", "tenant-a")
    line.put("b0", "tenant-b")
    line.put("b1", "tenant-b")
    line.put("c0", "tenant-c")

    order = [line.pop() for _ in range(8)]

    assert order == ["a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4"]
    assert len(line) == 995


def test_a_tenant_that_comes_back_joins_the_end_of_the_turn() -> None:
    line = FairLine()
    line.put("a0", "tenant-a")
    line.put("a1", "tenant-a")
    line.put("b0", "tenant-b")
    assert line.pop() == "a0"
    assert line.pop() == "b0"  # tenant-b now has none: out of the turn
    line.put("b1", "tenant-b")
    assert [line.pop(), line.pop()] == ["a1", "b1"]


def blocked_queue(release: threading.Event) -> LocalQueue:
    """A one-worker queue whose worker is inside a job until ``release`` is set."""
    started = threading.Event()

    def handler(_job_id: str) -> None:
        started.set()
        release.wait(30)

    local = LocalQueue(workers=1)
    local.start(handler)
    local.enqueue("job-0", "acme")
    assert started.wait(10)
    return local


def test_a_stop_told_to_give_up_leaves_the_running_job_and_says_so() -> None:
    release, give_up = threading.Event(), threading.Event()
    local = blocked_queue(release)
    assert local.running() == 1
    left: list[int] = []
    stopping = threading.Thread(target=lambda: left.append(local.stop(give_up)))
    stopping.start()
    stopping.join(0.3)
    assert stopping.is_alive()  # waiting for the job in progress

    give_up.set()  # a second Ctrl-C
    stopping.join(5)

    assert not stopping.is_alive() and left == [1]
    release.set()


def test_a_stop_with_a_timeout_waits_that_long_at_most() -> None:
    release = threading.Event()
    local = blocked_queue(release)
    begun = time.monotonic()

    assert local.stop(timeout=0.5) == 1
    assert 0.5 <= time.monotonic() - begun < 5
    release.set()


def test_a_stop_with_nothing_running_leaves_nothing() -> None:
    local = LocalQueue(workers=2)
    local.start(lambda _job_id: None)
    local.enqueue("job-0", "acme")
    assert local.stop(threading.Event(), timeout=5) == 0
    assert local.running() == 0

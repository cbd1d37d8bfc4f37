"""The in-process queue: a stop waits for the job in progress, not for the whole queue."""

from __future__ import annotations

import threading
import time

from ocrvault.jobs.queue import LocalQueue


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
        local.enqueue(f"job-{number}")
    assert started.wait(10)
    stopping = threading.Thread(target=local.stop)
    stopping.start()
    deadline = time.monotonic() + 10
    # Released once stop() has dropped the waiting jobs and posted its stop signal.
    while None not in local._queue.queue and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    stopping.join(10)

    assert not stopping.is_alive()
    assert handled == ["job-0"]  # the other four stay queued in the database for the next start

"""The in-process queue's line: fair between tenants. What every queue promises (delivery,
stop) is proven for it with the others in tests/contract/test_job_queue_contract.py."""

from __future__ import annotations

import threading
import time

from ocrvault.jobs.queue import FairLine, LocalQueue


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


def test_a_tenant_can_be_skipped_or_served_out_of_turn() -> None:
    line = FairLine()
    for job_id, tenant in (("a0", "tenant-a"), ("b0", "tenant-b"), ("c0", "tenant-c")):
        line.put(job_id, tenant)

    assert line.next_tenant() == "tenant-a"
    assert line.next_tenant(skipping={"tenant-a", "tenant-b"}) == "tenant-c"
    assert line.next_tenant(skipping={"tenant-a", "tenant-b", "tenant-c"}) is None
    assert line.pop("tenant-b") == "b0"
    assert [line.pop(), line.pop()] == ["a0", "c0"]


def test_with_every_worker_busy_a_tenant_with_no_job_open_still_starts_one() -> None:
    """The owner of a long PDF mostly waits on the page pool: another tenant's job opens
    beside it (its pages then take turns with the PDF's), while the same tenant's next
    job waits for a worker."""
    queue = LocalQueue(1, others=1)
    started: list[str] = []
    release = threading.Event()
    changed = threading.Condition()

    def handler(job_id: str) -> None:
        with changed:
            started.append(job_id)
            changed.notify_all()
        assert release.wait(30)

    queue.start(handler)
    try:
        queue.enqueue("long-pdf", "tenant-a")
        queue.enqueue("next-of-a", "tenant-a")
        queue.enqueue("receipt", "tenant-b")
        queue.enqueue("second-of-b", "tenant-b")
        with changed:
            assert changed.wait_for(lambda: len(started) == 2, 30)
        time.sleep(0.2)  # room for a wrong start to show; none may come
        assert started == ["long-pdf", "receipt"]
        assert queue.running() == 2
    finally:
        release.set()
        assert queue.stop(timeout=30) == 0

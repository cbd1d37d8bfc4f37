"""The in-process queue's line: fair between tenants. What every queue promises (delivery,
stop) is proven for it with the others in tests/contract/test_job_queue_contract.py."""

from __future__ import annotations

from ocrvault.jobs.queue import FairLine


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

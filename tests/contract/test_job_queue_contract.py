"""What every JobQueue promises (jobs/queue.py), proven on each implementation: the local
queue, and Celery on the machine's Redis and RabbitMQ.

Delivery: every id enqueued, before or after the start, reaches a handler once, as the
id alone. Stop: it waits for the job in progress unless told to give up or out of time,
says how many it left, and takes nothing more. Fairness and durability where the queue
says it has them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocrvault.config import Settings
from ocrvault.jobs.celery_queue import CeleryQueue
from ocrvault.jobs.queue import JobQueue, LocalQueue, open_queue
from tests.services import broker_space

MakeQueue = Callable[[int], JobQueue]
WAIT = 60  # seconds: a bound on waiting for deliveries, never a pause


@pytest.fixture(params=["local", "redis", "rabbitmq"])
def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeQueue]:
    """Queues of one kind; Celery queues made in one test share one broker queue, as the
    nodes of one deployment do. All are stopped at the end."""
    made: list[JobQueue] = []
    if request.param == "local":
        def make(workers: int) -> JobQueue:
            made.append(LocalQueue(workers))
            return made[-1]
    else:
        space = broker_space(request.param)

        def make(workers: int) -> JobQueue:
            made.append(open_queue(space.settings(tmp_path), workers))
            return made[-1]
    yield make
    for queue in made:
        assert queue.stop(timeout=WAIT) == 0, "a job was still running at the test's end"
    if request.param != "local":
        space.delete_queue(tmp_path)


class Recorder:
    """A handler that records the ids it gets; ``until(n)`` waits for n of them."""

    def __init__(self) -> None:
        self.ids: list[object] = []
        self._changed = threading.Condition()

    def __call__(self, job_id: str) -> None:
        with self._changed:
            self.ids.append(job_id)
            self._changed.notify_all()

    def until(self, count: int) -> list[object]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.ids) >= count, WAIT), self.ids
            return list(self.ids)


class Blocker:
    """A handler that holds each job until ``release`` is set."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self.done: list[str] = []

    def __call__(self, job_id: str) -> None:
        self.started.set()
        assert self.release.wait(WAIT)
        self.done.append(job_id)


def test_every_id_enqueued_before_or_after_the_start_reaches_a_handler_once_as_itself(
        make_queue: MakeQueue) -> None:
    queue, handler = make_queue(2), Recorder()
    early = [f"early-{n}" for n in range(10)]
    late = [f"late-{n}" for n in range(10)]
    for number, job_id in enumerate(early):
        queue.enqueue(job_id, f"tenant-{number % 3}")
    queue.start(handler)
    for number, job_id in enumerate(late):
        queue.enqueue(job_id, f"tenant-{number % 3}")

    handler.until(20)
    assert queue.stop(timeout=WAIT) == 0

    assert sorted(handler.ids) == sorted(early + late)  # each once: nothing twice, none lost
    assert all(type(job_id) is str for job_id in handler.ids)


def test_a_handler_that_raises_does_not_stop_the_queue(make_queue: MakeQueue) -> None:
    queue, handled = make_queue(1), Recorder()

    def handler(job_id: str) -> None:
        handled(job_id)
        if job_id == "bad":
            raise RuntimeError("a crashing job")

    queue.start(handler)
    queue.enqueue("bad", "acme")
    queue.enqueue("good", "acme")

    assert handled.until(2) == ["bad", "good"]


def test_stop_waits_for_the_job_in_progress_counts_it_and_takes_no_other(
        make_queue: MakeQueue) -> None:
    queue, handler = make_queue(1), Blocker()
    queue.start(handler)
    for number in range(3):
        queue.enqueue(f"job-{number}", "acme")
    assert handler.started.wait(WAIT)
    assert queue.running() == 1
    left: list[int] = []
    stopping = threading.Thread(target=lambda: left.append(queue.stop()))
    stopping.start()
    stopping.join(0.5)
    assert stopping.is_alive()  # waiting for the job in progress

    handler.release.set()
    stopping.join(WAIT)

    assert not stopping.is_alive() and left == [0]
    assert handler.done == ["job-0"]
    assert queue.running() == 0


def test_a_stop_told_to_give_up_returns_at_once_with_the_jobs_left_running(
        make_queue: MakeQueue) -> None:
    queue, handler = make_queue(1), Blocker()
    queue.start(handler)
    queue.enqueue("job-0", "acme")
    assert handler.started.wait(WAIT)
    give_up = threading.Event()
    give_up.set()  # a second Ctrl-C

    assert queue.stop(give_up) == 1
    handler.release.set()  # the fixture's stop then ends it cleanly


def test_a_stop_with_a_timeout_returns_after_it_with_the_jobs_left_running(
        make_queue: MakeQueue) -> None:
    queue, handler = make_queue(1), Blocker()
    queue.start(handler)
    queue.enqueue("job-0", "acme")
    assert handler.started.wait(WAIT)

    assert queue.stop(timeout=0.5) == 1
    handler.release.set()


def test_a_queue_never_started_stops_at_once_with_nothing_left(make_queue: MakeQueue) -> None:
    queue = make_queue(1)
    queue.enqueue("job-0", "acme")
    assert queue.stop(timeout=0) == 0


def test_a_queue_with_no_workers_takes_ids_and_never_runs_them(make_queue: MakeQueue) -> None:
    """An API node: it enqueues for others and runs nothing itself."""
    queue, handler = make_queue(0), Recorder()
    queue.start(handler)
    queue.enqueue("job-0", "acme")
    assert queue.stop(timeout=0) == 0
    assert handler.ids == []


def test_a_durable_queue_hands_what_waited_at_a_stop_to_the_next_consumer(
        make_queue: MakeQueue) -> None:
    first, blocker = make_queue(1), Blocker()
    if not first.durable:
        pytest.skip("not durable: its node enqueues every queued job again at start "
                    "(tests/integration/test_restart.py)")
    first.start(blocker)
    for number in range(3):
        first.enqueue(f"job-{number}", "acme")
    assert blocker.started.wait(WAIT)
    blocker.release.set()
    assert first.stop(timeout=WAIT) == 0

    second, handler = make_queue(1), Recorder()
    second.start(handler)

    assert sorted([*blocker.done, *handler.until(3 - len(blocker.done))]) == \
        ["job-0", "job-1", "job-2"]


def test_a_fair_queue_serves_another_tenant_before_a_backlog_of_fifty(
        make_queue: MakeQueue) -> None:
    queue, handler = make_queue(1), Recorder()
    if not queue.fair:
        pytest.skip("this queue does not promise fairness between tenants (fair = False)")
    for number in range(50):
        queue.enqueue(f"busy-{number}", "busy")
    queue.enqueue("other-0", "other")
    queue.start(handler)

    assert handler.until(51).index("other-0") <= 1


def test_open_queue_builds_the_queue_the_settings_name(tmp_path: Path) -> None:
    assert isinstance(open_queue(Settings(data_dir=tmp_path, workers=3)), LocalQueue)
    celery = open_queue(Settings(data_dir=tmp_path, queue="celery",
                                 broker_url="redis://127.0.0.1:6379/5"), 2)
    assert isinstance(celery, CeleryQueue) and celery.workers == 2


def test_the_celery_queue_without_a_broker_url_is_refused_at_configuration(
        tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="OCRVAULT_BROKER_URL"):
        Settings(data_dir=tmp_path, queue="celery")
    with pytest.raises(ValueError, match="OCRVAULT_BROKER_URL"):
        Settings(data_dir=tmp_path, queue="celery", broker_url="http://127.0.0.1:6379")

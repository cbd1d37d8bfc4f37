"""Job queues: only a job id crosses them; the worker loads everything else.

A queue is the hand-off between the node that records a job (the API) and the nodes
that run it (workers). The database, not the queue, is the truth about a job: a worker
claims the job under a lease before it runs it (jobs/leases.py), so an id delivered
twice, or to a worker that died, is done once; ids reach the queue through the outbox
(jobs/outbox.py), after the transaction that records the job commits.

Implementations, chosen by ``OCRVAULT_QUEUE`` through :func:`open_queue`:

- ``LocalQueue``: the embedded deployment's in-process pool, fair between tenants
  (:class:`FairLine`). Not durable: at start the embedded node enqueues every queued
  job again, so a restart loses nothing.
- ``CeleryQueue`` (jobs/celery_queue.py): Celery on Redis or RabbitMQ, for workers on
  other machines. Durable: the broker keeps what was enqueued across restarts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Container
from typing import Protocol, runtime_checkable

from ocrvault.config import Settings

log = logging.getLogger(__name__)

JobHandler = Callable[[str], None]
#: Called with a job id and the lease holder whose pages to help read (jobs/spread.py).
PageHandler = Callable[[str, str], None]

# Jobs a local queue opens beyond its workers, each for a tenant with none open (LocalQueue).
OTHER_TENANTS = 4
# How often a stop that waits for running jobs looks whether it was told to give up: a
# signal handler sets that flag and cannot safely notify the condition the stop waits on.
_GIVE_UP_POLL_SECONDS = 0.2


class QueueUnavailable(RuntimeError):
    """The queue's broker cannot be reached; the message says which and what to do.

    Never carries document content: only the broker's address, without its password.
    """


class JobQueue(Protocol):
    """Where job ids wait for a worker. Every implementation passes
    tests/contract/test_job_queue.py.

    Delivery is at least once: every id enqueued is handed to a handler of a started
    queue, once in the normal course, again after a worker is lost; the handler's lease
    makes a second delivery harmless.
    """

    #: Whether enqueued ids outlive this process (a broker keeps them). A queue that is
    #: not durable is fed again with every queued job when its node starts.
    durable: bool
    #: Whether one tenant's backlog cannot hold up another tenant's next job (served in
    #: turn). A queue that is not fair serves ids in the order they were enqueued.
    fair: bool
    #: Set once the queue has stopped taking jobs: after :meth:`stop`, or on its own (a
    #: broker lost for good), when its node must end for a supervisor to restart it. A
    #: queue of this process's memory never stops on its own and never sets it.
    ended: threading.Event

    def start(self, handler: JobHandler) -> None:
        """Begin handing ids to ``handler`` on this process's worker threads; returns once
        the queue is consuming. A queue only enqueued to (an API node) is never started.
        Raises QueueUnavailable when the broker cannot be reached. ``handler`` gets a job
        id (a ``str``) and nothing else; what it raises is logged, never propagated."""
        ...

    def enqueue(self, job_id: str, tenant_id: str) -> None:
        """Hand ``job_id`` to the workers; returns once the queue holds it (a broker has
        accepted it). ``tenant_id`` may order the waiting ids (fairness), and never
        leaves the process. Raises QueueUnavailable when the broker cannot be reached:
        the job stays in the outbox and is sent again later."""
        ...

    def running(self) -> int:
        """How many jobs this process is working on now."""
        ...

    def stop(self, give_up: threading.Event | None = None,
             timeout: float | None = None) -> int:
        """Stop taking jobs and wait for those in progress, unless ``give_up`` is set or
        ``timeout`` seconds pass first; return how many were left running. Waiting ids
        are not lost: a durable queue keeps them for the next consumer, and the database
        keeps them queued for a queue that is not. Stopping an unstarted queue returns 0."""
        ...


@runtime_checkable
class PageQueue(Protocol):
    """A queue that also carries a job's page tasks to every node (jobs/spread.py). Only
    a queue between processes does: the local queue's node reads pages on its own
    threads (jobs/pages.py)."""

    def publish_pages(self, job_id: str, holder: str, count: int) -> None:
        """Put ``count`` page tasks of the job, under the claim ``holder``, on the queue.
        Raises QueueUnavailable when the broker cannot be reached."""
        ...

    def take_pages(self, helper: PageHandler) -> None:
        """Hand the page tasks this node's threads take to ``helper``; call before
        :meth:`JobQueue.start`."""
        ...


def open_queue(settings: Settings, workers: int | None = None) -> JobQueue:
    """The queue ``settings.queue`` names, with ``workers`` (default ``settings.workers``)
    worker threads once started. Celery is imported only when it is chosen."""
    threads = settings.workers if workers is None else workers
    if settings.queue == "celery":
        from ocrvault.jobs.celery_queue import CeleryQueue

        return CeleryQueue(settings, threads)
    return LocalQueue(threads)


class FairLine:
    """Waiting jobs, first in first out within a tenant, tenants served in turn.

    One global FIFO lets a tenant with a thousand queued jobs keep every other tenant
    waiting behind them; here another tenant's job is at most one turn away.
    """

    def __init__(self) -> None:
        self._lines: dict[str, deque[str]] = {}  # in turn order: the next tenant first

    def __len__(self) -> int:
        return sum(len(line) for line in self._lines.values())

    def put(self, job_id: str, tenant_id: str) -> None:
        self._lines.setdefault(tenant_id, deque()).append(job_id)

    def next_tenant(self, skipping: Container[str] = ()) -> str | None:
        """The first tenant in turn with a job waiting, other than those ``skipping``."""
        return next((tenant for tenant in self._lines if tenant not in skipping), None)

    def pop(self, tenant_id: str | None = None) -> str:
        """The first job of ``tenant_id`` (by default the tenant whose turn it is), which
        then goes to the back. Never call it with no job of that tenant waiting."""
        tenant_id = tenant_id or next(iter(self._lines))
        line = self._lines.pop(tenant_id)
        job_id = line.popleft()
        if line:
            self._lines[tenant_id] = line
        return job_id

    def clear(self) -> None:
        self._lines.clear()


class LocalQueue:
    """Threads of this process, fed from memory; see the module's docstring.

    ``workers`` threads take jobs in turn, and up to ``others`` more open a job of a tenant
    that has none open: the owner of a job mostly waits while the page pool reads its
    pages (jobs/pages.py), so one tenant's long PDF on every worker does not hold back
    another tenant's receipt until it ends; their pages take turns instead.
    """

    durable = False
    fair = True

    def __init__(self, workers: int, others: int = OTHER_TENANTS) -> None:
        self.workers = workers
        self.slots = workers + others if workers else 0
        self.ended = threading.Event()  # never set: memory is not lost like a broker
        self._waiting = FairLine()
        self._changed = threading.Condition()
        self._stopping = False
        self._busy = 0  # jobs being handled now
        self._open: Counter[str] = Counter()  # of them, per tenant
        self._threads: list[threading.Thread] = []

    def start(self, handler: JobHandler) -> None:
        self._stopping = False
        for index in range(self.slots):
            thread = threading.Thread(
                target=self._loop, args=(handler,), name=f"ocr-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def enqueue(self, job_id: str, tenant_id: str) -> None:
        with self._changed:
            self._waiting.put(job_id, tenant_id)
            self._changed.notify()

    def _admissible(self) -> str | None:
        """The tenant whose job may start now, if any."""
        if self._busy < self.workers:
            return self._waiting.next_tenant()
        return self._waiting.next_tenant(skipping=self._open)

    def _next(self) -> tuple[str, str] | None:
        """The next job and its tenant, or None once stopping."""
        with self._changed:
            self._changed.wait_for(lambda: self._stopping or self._admissible() is not None)
            if self._stopping:
                return None
            tenant_id = self._admissible()
            assert tenant_id is not None
            self._busy += 1
            self._open[tenant_id] += 1
            return self._waiting.pop(tenant_id), tenant_id

    def _loop(self, handler: JobHandler) -> None:
        while (job := self._next()) is not None:
            job_id, tenant_id = job
            try:
                handler(job_id)
            except Exception:
                # The handler records failures on the job; this is the last guard
                # that keeps one bad job from ending the worker thread.
                log.exception("worker crashed on job %s", job_id)
            finally:
                with self._changed:
                    self._busy -= 1
                    self._open[tenant_id] -= 1
                    if not self._open[tenant_id]:
                        del self._open[tenant_id]
                    self._changed.notify_all()

    def running(self) -> int:
        with self._changed:
            return self._busy

    def stop(self, give_up: threading.Event | None = None,
             timeout: float | None = None) -> int:
        """Stop once the jobs in progress end. Jobs still waiting are dropped from memory,
        not lost: they stay queued in the database and the next start enqueues them, so a
        stop with a long queue takes one job's time, not the whole queue's.

        When ``give_up`` is set or ``timeout`` seconds pass first, the jobs in progress are
        left to their (daemon) threads and returned as a count: the process is about to end,
        and in the database they are still running, which the next start re-queues."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            self._stopping = True
            self._waiting.clear()
            self._changed.notify_all()
            while self._busy and not (give_up is not None and give_up.is_set()):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._changed.wait(_GIVE_UP_POLL_SECONDS if remaining is None
                                   else min(_GIVE_UP_POLL_SECONDS, remaining))
            left = self._busy
        if not left:
            for thread in self._threads:
                thread.join()
        self._threads.clear()
        return left

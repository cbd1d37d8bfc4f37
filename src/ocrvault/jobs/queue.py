"""Job queues: only a job id crosses them; the worker loads everything else.

``LocalQueue`` is the embedded deployment's in-process pool, fair between tenants
(:class:`FairLine`). Its state is the
database: at start the service re-enqueues every queued job, so a restart loses
nothing, and a worker claims a job with an atomic status change, so nothing is
done twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from ocrvault.config import Settings

log = logging.getLogger(__name__)

JobHandler = Callable[[str], None]

# How often a stop that waits for running jobs looks whether it was told to give up: a
# signal handler sets that flag and cannot safely notify the condition the stop waits on.
_GIVE_UP_POLL_SECONDS = 0.2


class JobQueue(Protocol):
    def start(self, handler: JobHandler) -> None: ...
    def enqueue(self, job_id: str, tenant_id: str) -> None: ...
    def running(self) -> int:
        """How many jobs this process is working on now."""
        ...

    def stop(self, give_up: threading.Event | None = None,
             timeout: float | None = None) -> int:
        """Stop taking jobs and wait for those in progress, unless ``give_up`` is set or
        ``timeout`` seconds pass first; return how many were left running."""
        ...


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

    def pop(self) -> str:
        """The next tenant's first job; that tenant goes to the back. Never call it empty."""
        tenant_id = next(iter(self._lines))
        line = self._lines.pop(tenant_id)
        job_id = line.popleft()
        if line:
            self._lines[tenant_id] = line
        return job_id

    def clear(self) -> None:
        self._lines.clear()


class LocalQueue:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._waiting = FairLine()
        self._changed = threading.Condition()
        self._stopping = False
        self._busy = 0  # jobs being handled now
        self._threads: list[threading.Thread] = []

    def start(self, handler: JobHandler) -> None:
        self._stopping = False
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._loop, args=(handler,), name=f"ocr-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def enqueue(self, job_id: str, tenant_id: str) -> None:
        with self._changed:
            self._waiting.put(job_id, tenant_id)
            self._changed.notify()

    def _next(self) -> str | None:
        """The next job, or None once stopping."""
        with self._changed:
            self._changed.wait_for(lambda: self._stopping or len(self._waiting) > 0)
            if self._stopping:
                return None
            self._busy += 1
            return self._waiting.pop()

    def _loop(self, handler: JobHandler) -> None:
        while (job_id := self._next()) is not None:
            try:
                handler(job_id)
            except Exception:
                # The handler records failures on the job; this is the last guard
                # that keeps one bad job from ending the worker thread.
                log.exception("worker crashed on job %s", job_id)
            finally:
                with self._changed:
                    self._busy -= 1
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


def open_queue(settings: Settings) -> JobQueue:
    """The queue ``settings.queue`` names; every role opens its own through here."""
    return LocalQueue(settings.workers)

"""Job queues: only a job id crosses them; the worker loads everything else.

``LocalQueue`` is the embedded deployment's in-process pool. Its state is the
database: at start the service re-enqueues every queued job, so a restart loses
nothing, and a worker claims a job with an atomic status change, so nothing is
done twice.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

JobHandler = Callable[[str], None]


class JobQueue(Protocol):
    def start(self, handler: JobHandler) -> None: ...
    def enqueue(self, job_id: str) -> None: ...
    def stop(self) -> None: ...


class LocalQueue:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def start(self, handler: JobHandler) -> None:
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._loop, args=(handler,), name=f"ocr-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def enqueue(self, job_id: str) -> None:
        self._queue.put(job_id)

    def _loop(self, handler: JobHandler) -> None:
        while (job_id := self._queue.get()) is not None:
            try:
                handler(job_id)
            except Exception:
                # The handler records failures on the job; this is the last guard
                # that keeps one bad job from ending the worker thread.
                log.exception("worker crashed on job %s", job_id)

    def stop(self) -> None:
        """Stop once the jobs in progress end. Jobs still waiting are dropped from memory,
        not lost: they stay queued in the database and the next start enqueues them, so a
        stop with a long queue takes one job's time, not the whole queue's."""
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()

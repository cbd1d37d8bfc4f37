"""Pages as the unit of work: the pages of every open job, on every free worker, in turn.

A job's owner (the queue thread that claimed it) opens the document and hands its pages
to the :class:`PagePool` as a :class:`PagedJob`; the pool's threads read one page each at
a time, so one 20-page PDF keeps every worker busy instead of one. A page task is only
a job id and a page index (:class:`PageTask`): the document, its key and the engine stay
with the owner's reader, so the same tasks can run elsewhere against the job's stored
input. The results come back to the owner, in page order, and it assembles them once.

On a cluster the same split carries over the broker (jobs/spread.py): page tasks under
the job's lease, read by any worker from the job's sealed input, their results sealed as
parts of the job and assembled once by the owner. This module is the embedded,
in-process form.

Fairness is kept at page granularity, like jobs/queue.py's FairLine keeps it for jobs:
tenants take turns, and within a tenant its open jobs take turns, so a 2,000-page PDF
and a one-page receipt of another tenant interleave page by page.

A page that fails stops the job: no further page of it is started, the pages in flight
finish, and the owner raises the error of the lowest-numbered page that failed (the one
a sequential read would have hit first). A job withdrawn while it runs (deleted) is
noticed before its next page starts, and the owner raises :class:`JobWithdrawn`.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from ocrvault.memory import release_free_memory

log = logging.getLogger(__name__)

R = TypeVar("R")

PageProgress = Callable[[int, int], None]


class JobWithdrawn(Exception):
    """The job stopped being wanted (deleted) while its pages were read."""


@dataclass(frozen=True, slots=True)
class PageTask:
    """One page of one job: all a worker needs to be told."""

    job_id: str
    index: int  # 0-based, into the job's page selection


class PagedJob(Generic[R]):
    """A job's pages as its owner hands them to the pool: ``read(index)`` reads one (on
    any thread), ``wanted()`` says whether the job is still to be done (asked before each
    page but the first)."""

    def __init__(self, job_id: str, tenant_id: str, count: int, read: Callable[[int], R],
                 wanted: Callable[[], bool] = lambda: True) -> None:
        if count < 1:
            raise ValueError("a job has at least one page")
        self.job_id = job_id
        self.tenant_id = tenant_id
        self.count = count
        self.read = read
        self.wanted = wanted
        # The pool's bookkeeping, under its lock.
        self._results: list[R | None] = [None] * count
        self._errors: dict[int, BaseException] = {}
        self._running = 0  # pages being read now
        self._done = 0
        self._withdrawn = False

    @property
    def _stopped(self) -> bool:
        return bool(self._errors) or self._withdrawn

    @property
    def _settled(self) -> bool:
        """Nothing of it runs and nothing more will start."""
        return self._running == 0 and (self._stopped or self._done == self.count)


class PageLine:
    """Page tasks waiting for a worker: tenants in turn, each tenant's jobs in turn, each
    job's pages in order. It holds ids and counts only, never a page."""

    def __init__(self) -> None:
        # In turn order, the next tenant first; per tenant its jobs' (id, next index, count).
        self._tenants: dict[str, deque[list[str | int]]] = {}
        self._tenant_of: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self._tenants)

    def put(self, job_id: str, tenant_id: str, count: int) -> None:
        """Pages 0 .. ``count`` - 1 of the job, to be handed out in order."""
        self._tenants.setdefault(tenant_id, deque()).append([job_id, 0, count])
        self._tenant_of[job_id] = tenant_id

    def pop(self) -> PageTask:
        """The next tenant's next job's next page. Never call it empty."""
        tenant_id = next(iter(self._tenants))
        jobs = self._tenants.pop(tenant_id)
        entry = jobs.popleft()
        job_id, index, count = str(entry[0]), int(entry[1]), int(entry[2])
        if index + 1 < count:
            entry[1] = index + 1
            jobs.append(entry)  # its next page waits for the tenant's other jobs
        else:
            del self._tenant_of[job_id]
        if jobs:
            self._tenants[tenant_id] = jobs  # the tenant goes to the back
        return PageTask(job_id, index)

    def drop(self, job_id: str) -> None:
        """Take out the job's pages not handed out yet."""
        tenant_id = self._tenant_of.pop(job_id, None)
        if tenant_id is None:
            return
        jobs = self._tenants[tenant_id]
        for entry in jobs:
            if entry[0] == job_id:
                jobs.remove(entry)
                break
        if not jobs:
            del self._tenants[tenant_id]


class PagePool:
    """``workers`` threads that read the pages of every open job, fairly (:class:`PageLine`)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._line = PageLine()
        self._changed = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._jobs: dict[str, PagedJob[object]] = {}  # open: their owners wait in run()

    def start(self, warm: Callable[[], object] | None = None) -> None:
        """Start the threads; with ``warm``, each calls it first (loading what it keeps
        per thread, such as an engine's model) and this returns once all have, so that
        the first pages do not pay for it."""
        self._stopping = False
        warmed = threading.Semaphore(0)
        for index in range(self.workers):
            thread = threading.Thread(target=self._loop, args=(warm, warmed),
                                      name=f"ocr-page-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for _ in self._threads:
            warmed.acquire()

    @property
    def running(self) -> bool:
        """Whether it has threads to read pages (none with 0 workers, or once stopped)."""
        with self._changed:
            return bool(self._threads) and not self._stopping

    def run(self, job: PagedJob[R], on_page: PageProgress | None = None) -> list[R]:
        """Read every page of ``job`` on the pool and return the results in page order.

        Blocks the calling thread (the job's owner), which reports progress as pages
        finish; raises the first failing page's error, or :class:`JobWithdrawn`."""
        with self._changed:
            if self._stopping or not self._threads:
                raise RuntimeError("the page pool is not running")
            if job.job_id in self._jobs:
                raise RuntimeError(f"job {job.job_id} is already being read")
            self._jobs[job.job_id] = job  # type: ignore[assignment]  # R is the owner's
            self._line.put(job.job_id, job.tenant_id, job.count)
            self._changed.notify_all()
        try:
            return self._await(job, on_page)
        finally:
            with self._changed:
                del self._jobs[job.job_id]
                self._changed.notify_all()

    def wait_open(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` jobs are open (handed to :meth:`run`, not yet settled);
        False if ``timeout`` seconds pass first."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._jobs) >= count, timeout)

    def _await(self, job: PagedJob[R], on_page: PageProgress | None) -> list[R]:
        """The owner's side of :meth:`run`: progress while the pages are read, then the
        outcome."""
        reported = 0

        def news() -> bool:
            return job._settled or job._done != reported

        while True:
            with self._changed:
                self._changed.wait_for(news)
                settled, reported, stopped = job._settled, job._done, job._stopped
            if settled:
                break
            if on_page is not None and not stopped:
                # Here, not under the lock, and on the owner's thread: workers never wait
                # for a progress write.
                on_page(reported, job.count)
        if job._errors:
            raise job._errors[min(job._errors)]
        if job._withdrawn:
            raise JobWithdrawn(job.job_id)
        return cast(list[R], job._results)

    def stop(self) -> None:
        """Stop after the pages being read; open jobs start no more pages."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()
        self._threads.clear()

    def _next(self) -> tuple[PagedJob[object], int] | None:
        with self._changed:
            self._changed.wait_for(lambda: self._stopping or bool(self._line))
            if self._stopping:
                return None
            task = self._line.pop()
            job = self._jobs[task.job_id]
            job._running += 1
            return job, task.index

    def _loop(self, warm: Callable[[], object] | None, warmed: threading.Semaphore) -> None:
        try:
            if warm is not None:
                warm()
        except Exception:  # the first page meets the cause again, and reports it
            log.warning("a page worker could not warm up", exc_info=True)
        finally:
            warmed.release()
        while (task := self._next()) is not None:
            job, index = task
            try:
                if index and not job.wanted():
                    withdrawn, result, error = True, None, None
                else:
                    withdrawn, result, error = False, job.read(index), None
            except Exception as failure:  # the owner raises it; this thread goes on
                withdrawn, result, error = False, None, failure
            with self._changed:
                job._running -= 1
                if withdrawn:
                    job._withdrawn = True
                elif error is not None:
                    job._errors[index] = error
                else:
                    job._results[index] = result
                    job._done += 1
                if job._stopped:
                    self._line.drop(job.job_id)
                self._changed.notify_all()
                idle = not self._line
            if idle:
                # No page waits: give back what the pages read freed (their pixels,
                # Tesseract's working copies), or the heap stays at the largest page ever
                # read. Not between pages: the next page reuses that memory, where pages
                # after a trim cost 3 to 8% more CPU in faulting it in again.
                release_free_memory()

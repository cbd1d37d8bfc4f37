"""A job's pages read by every worker of the cluster (``OCRVAULT_QUEUE=celery``).

On the embedded default a job's pages spread over its node's own threads (jobs/pages.py).
On a cluster the worker that claimed a job, its owner, publishes page tasks on the broker
(the job id and the claim's holder token, nothing else), and whichever worker takes one
helps read the job:

- Which page: the job row counts the pages handed out (``pages_claimed``), taken one at a
  time by a conditional increment under the job's lease (store/leases.py). The owner takes
  pages the same way, so it never waits for a page nobody has taken: a job whose tasks
  wait on the broker behind other jobs still moves, and with every thread of the cluster
  an owner, nothing deadlocks.
- Results: a helper seals its page as a part of the job (store/documents.PagePart, named
  by the claim) and counts it on the row (``pages_done``, which clients see as progress).
  The owner waits for the count, fetches the parts (several at once) in page order,
  assembles the document once, and the job's finish deletes them.
- Fairness: a job has at most ``page_spread`` tasks on the broker at a time. A helper that
  takes a page publishes the job's next task then, at the back of the queue, so the pages
  of a 2,000-page PDF take turns with the jobs submitted after it.
- Failure: a page that fails records its error on the row and stops the handing out; the
  owner ends the job with it. A helper that dies, or cannot reach the key service or the
  store, leaves its page missing: the owner reads it itself once no page has been counted
  for a page's timeout and a margin.
- Leases: the owner's heartbeat keeps the lease. Every write of a helper is conditional on
  it, so a helper of a claim that lapsed adds nothing that the claim running the job now
  counts, and a part it stored is named by its own claim.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from ocrvault.errors import ErrorCode, OcrVaultError, Unavailable
from ocrvault.jobs.leases import LeaseLost, claim_of
from ocrvault.jobs.pages import JobWithdrawn
from ocrvault.jobs.pipeline import DocumentReader, PageResult
from ocrvault.jobs.queue import PageQueue, QueueUnavailable
from ocrvault.jobs.service import key_of
from ocrvault.model import JobStatus, Page
from ocrvault.store.db import Database
from ocrvault.store.documents import JobKey, PagePart, SealedDocuments
from ocrvault.store.leases import PageClaimRepository, PagesState
from ocrvault.store.records import JobRecord
from ocrvault.store.repository import JobRepository

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1  # how often an owner looks at the count of its pages done
STRAGGLER_MARGIN_SECONDS = 30.0  # beyond a page's timeout, before the owner reads it itself
PART_FETCHES = 8  # helpers' parts an owner fetches from the store at once
UNEXPECTED = "Processing failed unexpectedly; the error was logged."


def part_of(result: PageResult) -> bytes:
    return json.dumps({"page": result.page.model_dump(mode="json"),
                       "metadata_removed": sorted(result.metadata_removed)}).encode()


def result_of(part: bytes) -> PageResult:
    data = json.loads(part)
    return PageResult(Page.model_validate(data["page"]), frozenset(data["metadata_removed"]))


class PageClaims:
    """One claim's pages on the job row; every statement holds only under its lease."""

    def __init__(self, db: Database, job_id: str, holder: str, count: int) -> None:
        self.db = db
        self.job_id = job_id
        self.holder = holder
        self.count = count

    def take(self) -> int | None:
        """The next page to read (0-based); None when every page is handed out, or the
        job stopped running under this claim."""
        with self.db.transaction() as session:
            return PageClaimRepository(session).take(self.job_id, self.holder, self.count)

    def counted(self) -> bool:
        """Count one page read and stored; False if the job stopped running under it."""
        with self.db.transaction() as session:
            return PageClaimRepository(session).count_done(self.job_id, self.holder)

    def fail(self, error: OcrVaultError) -> None:
        with self.db.transaction() as session:
            PageClaimRepository(session).fail(self.job_id, self.holder, self.count,
                                              error.code.value, error.detail)

    def state(self) -> PagesState:
        """Where the pages stand; raises JobWithdrawn once the job is deleted, LeaseLost
        once another claim runs it (or it ended elsewhere)."""
        with self.db.transaction() as session:
            state = PageClaimRepository(session).state(self.job_id)
        if state is None or state.status == JobStatus.DELETED.value:
            raise JobWithdrawn(self.job_id)
        if state.status != JobStatus.RUNNING.value or state.holder != self.holder:
            raise LeaseLost(self.job_id)
        return state


@dataclass
class _Kept:
    reader: DocumentReader
    users: int = 0
    dropped: bool = False


class OpenReaders:
    """The documents a node helps read, kept open between their pages: the next page of
    one decodes from the child that holds the file, instead of fetching, opening and
    sending the whole file again. At most ``size`` are kept; those no thread uses go first."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def using(self, name: str, open_reader: Callable[[], DocumentReader]
              ) -> Iterator[DocumentReader]:
        with self._lock:
            kept = self._kept.get(name)
            if kept is not None:
                kept.users += 1
                self._kept.move_to_end(name)
        closing: list[DocumentReader] = []
        if kept is None:
            reader = open_reader()
            with self._lock:
                kept = self._kept.get(name)
                if kept is None:
                    kept = self._kept[name] = _Kept(reader)
                else:  # another thread opened it meanwhile
                    closing.append(reader)
                kept.users += 1
                closing += self._surplus()
        _close(closing)
        try:
            yield kept.reader
        finally:
            with self._lock:
                kept.users -= 1
                closing = self._surplus()
                if kept.dropped and not kept.users:
                    closing.append(kept.reader)
            _close(closing)

    def drop(self, name: str) -> None:
        """Close the document once no thread reads it (its pages are all handed out)."""
        with self._lock:
            kept = self._kept.pop(name, None)
            if kept is None:
                return
            kept.dropped = True
            closing = [] if kept.users else [kept.reader]
        _close(closing)

    def close(self) -> None:
        with self._lock:
            names = list(self._kept)
        for name in names:
            self.drop(name)

    def _surplus(self) -> list[DocumentReader]:
        """Under the lock: unused readers beyond ``size``, oldest first, taken out."""
        surplus = []
        for name in list(self._kept):
            if len(self._kept) <= self.size:
                break
            if not self._kept[name].users:
                surplus.append(self._kept.pop(name).reader)
        return surplus


def _close(readers: list[DocumentReader]) -> None:
    for reader in readers:
        reader.close()


class PageSpread:
    """Both sides of spreading a job's pages: the owner's :meth:`read_all` and the
    helper's :meth:`help`. ``open_reader`` opens a job's sealed input, under a sandbox
    key of the caller's choosing."""

    def __init__(self, db: Database, documents: SealedDocuments, queue: PageQueue, *,
                 tasks: int, page_timeout: float,
                 open_reader: Callable[[JobRecord, str], DocumentReader],
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.documents = documents
        self.queue = queue
        self.tasks = tasks  # page tasks of one job on the broker at a time
        self.straggler_seconds = page_timeout + STRAGGLER_MARGIN_SECONDS
        self.open_reader = open_reader
        self.sleep = sleep
        self.monotonic = monotonic
        self.readers = OpenReaders()

    # -- the owner ----------------------------------------------------------------------

    def read_all(self, key: JobKey, holder: str, count: int,
                 read: Callable[[int], PageResult]) -> list[PageResult]:
        """Every page of the job, in order: read here as they come, and by whichever
        workers take its page tasks. Raises a failed page's error, JobWithdrawn or
        LeaseLost."""
        claims = PageClaims(self.db, key.job_id, holder, count)
        self._publish(key.job_id, holder, min(self.tasks, count - 1))
        results: dict[int, PageResult] = {}
        while (index := claims.take()) is not None:
            try:
                results[index] = read(index)
            except OcrVaultError as error:
                if not isinstance(error, Unavailable):
                    claims.fail(error)  # helpers start no further page
                raise
            if not claims.counted():
                claims.state()  # raises why
        self._await_helpers(claims)
        helped = [index for index in range(count) if index not in results]
        for index, part in zip(helped, self._parts(key, claim_of(holder), helped),
                               strict=True):
            # Missing only when its helper was lost: read it here.
            results[index] = result_of(part) if part is not None else read(index)
        return [results[index] for index in range(count)]

    def _parts(self, key: JobKey, claim: str, indexes: list[int]) -> list[bytes | None]:
        """The helpers' parts of pages ``indexes`` (None where one is missing), fetched
        ``PART_FETCHES`` at a time: from an object store each is a round trip, and one
        after another they would add up at the end of a long document."""
        def fetch(index: int) -> bytes | None:
            return self.documents.find(key, PagePart(claim, index))

        if len(indexes) < 2:
            return [fetch(index) for index in indexes]
        with ThreadPoolExecutor(min(PART_FETCHES, len(indexes)),
                                thread_name_prefix="page-parts") as fetches:
            return list(fetches.map(fetch, indexes))

    def _await_helpers(self, claims: PageClaims) -> None:
        """Until every page is counted, or none has been for ``straggler_seconds``."""
        seen, since = -1, self.monotonic()
        while True:
            state = claims.state()
            if state.error_code is not None:
                raise OcrVaultError(ErrorCode(state.error_code), state.error_detail or "")
            if state.done >= claims.count:
                return
            now = self.monotonic()
            if state.done != seen:
                seen, since = state.done, now
            elif now - since > self.straggler_seconds:
                log.warning("job %s: %d of its pages were handed out and never counted; "
                            "their workers were lost, so they are read here",
                            claims.job_id, claims.count - state.done)
                return
            self.sleep(POLL_SECONDS)

    def _publish(self, job_id: str, holder: str, tasks: int) -> None:
        if tasks < 1:
            return
        try:
            self.queue.publish_pages(job_id, holder, tasks)
        except QueueUnavailable:  # the pages not taken are read by the owner
            log.warning("job %s: page tasks could not be published; its worker reads "
                        "its pages alone", job_id)

    # -- a helper -----------------------------------------------------------------------

    def help(self, job_id: str, holder: str) -> None:
        """Read one page of the job under ``holder``'s claim, if one is left."""
        # The file kept open between the pages this node reads of the job; every chain
        # of tasks ends in one that finds no page left, which closes it.
        name = f"help-{job_id}-{claim_of(holder)}"
        with self.db.transaction() as session:
            job = JobRepository(session).by_id(job_id)
        index = None
        if job is not None and job.status is JobStatus.RUNNING and job.page_count:
            claims = PageClaims(self.db, job_id, holder, job.page_count)
            index = claims.take()
        if job is None or index is None:
            self.readers.drop(name)
            return
        last = index + 1 == claims.count
        if not last:  # the job's next task, behind what came meanwhile
            self._publish(job_id, holder, 1)
        try:
            with self.readers.using(name, lambda: self.open_reader(job, name)) as reader:
                result = reader.read(index)
        except Unavailable as error:
            log.warning("job %s: page %d left to its owner (%s)", job_id, index + 1,
                        error.detail)
            return
        except OcrVaultError as error:
            claims.fail(error)
            return
        except Exception:
            log.exception("job %s: page %d failed unexpectedly", job_id, index + 1)
            claims.fail(OcrVaultError(ErrorCode.PROCESSING_FAILED, UNEXPECTED))
            return
        finally:
            if last:  # no task of the job follows this one here
                self.readers.drop(name)
        key = key_of(job)
        part = PagePart(claim_of(holder), index)
        self.documents.put(key, part, part_of(result))
        if not claims.counted():  # the claim lapsed, or the job ended: nothing may stay
            self.documents.delete(job.tenant_id, job.id, part)
            return
        log.info("job %s: page %d of %d read here for the worker that holds it", job_id,
                 index + 1, claims.count)

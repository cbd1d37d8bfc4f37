"""A job's pages spread over the cluster's workers (jobs/spread.py), on a real Celery
broker: the document is the one read page after page, other workers' threads read its
pages, a failing page fails the job with its error, and no page part outlives the job.
Then the protocol itself, driven by hand: every page handed out once, a claim that lapsed
writes nothing, a lost helper's page read by the owner, a part that does not open under
another page's name."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from PIL.Image import Image

from ocrvault.config import Settings
from ocrvault.engines.base import RecognizeOptions
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.errors import ErrorCode, IntegrityError, OcrVaultError
from ocrvault.jobs.celery_queue import PAGE_TASK_NAME, CeleryQueue
from ocrvault.jobs.leases import new_holder
from ocrvault.jobs.pipeline import DocumentReader, PageResult
from ocrvault.jobs.queue import QueueUnavailable
from ocrvault.jobs.service import key_of
from ocrvault.jobs.spread import (
    STRAGGLER_MARGIN_SECONDS,
    OpenReaders,
    PageClaims,
    PageSpread,
    part_of,
)
from ocrvault.jobs.worker import JobWorker
from ocrvault.model import Page
from ocrvault.runtime import Runtime
from ocrvault.store.blobs import BlobStore, blob_key
from ocrvault.store.documents import ObjectKind, PagePart
from ocrvault.store.leases import LeaseRepository
from ocrvault.store.records import JobRecord
from ocrvault.store.repository import JobRepository
from tests.conftest import auth, issue, runtime_of, wait_for_job
from tests.databases import TestDatabases
from tests.engine_fakes import FixedEngine
from tests.integration.test_pages import FailsOnPage, pages_pdf, submit
from tests.services import BrokerSpace, broker_space

HELPED = "read here for the worker that holds it"


@pytest.fixture
def space(tmp_path: Path) -> Iterator[BrokerSpace]:
    chosen = broker_space("redis")
    yield chosen
    chosen.delete_queue(tmp_path)


def parts_left(data_dir: Path, job_id: str) -> list[Path]:
    return [path for path in data_dir.rglob("*") if path.is_file()
            and job_id in path.parts and PagePart.FOLDER in path.parts]


def test_a_pdf_read_with_page_tasks_is_the_document_read_page_after_page(
        space: BrokerSpace, databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path, engine: TesseractEngine, caplog: pytest.LogCaptureFixture) -> None:
    data_dir = tmp_path / "data"
    client = make_client(space.settings(data_dir, workers=2, **databases.values(data_dir)))
    key = issue(client, "acme")
    data = pages_pdf(6)

    with caplog.at_level(logging.INFO, logger="ocrvault.jobs.spread"):
        job_id = submit(client, key, data)
        job = wait_for_job(client, job_id, key, timeout=120)

    assert job["status"] == "succeeded", job
    pipeline = runtime_of(client).pipeline
    params = pipeline.params(None, None, None)
    assert job["result"] == pipeline.run(data, pipeline.check(data, params),
                                         params).model_dump(mode="json")
    helped = [record.getMessage() for record in caplog.records if HELPED in record.message]
    # The owner reads a page at a time; the node's other thread took pages of the job.
    assert helped and all(job_id in message for message in helped), caplog.text
    assert job["pages_done"] == 6
    assert parts_left(data_dir, job_id) == []


def test_a_page_that_fails_under_a_page_task_fails_the_job_with_its_error(
        space: BrokerSpace, databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    client = make_client(space.settings(data_dir, workers=2, **databases.values(data_dir)),
                         engine=FailsOnPage(3))
    key = issue(client, "acme")

    job_id = submit(client, key, pages_pdf(6))
    job = wait_for_job(client, job_id, key, timeout=120)

    assert job["status"] == "failed"
    assert job["error"] == {"code": "corrupt_file", "detail": "Page 3 is unreadable."}
    assert parts_left(data_dir, job_id) == []


# -- the protocol, by hand ------------------------------------------------------------


class HeldTasks:
    """A PageQueue that keeps what is published, for the test to run, or lose as a dead
    worker would."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, str]] = []
        self.most_waiting = 0
        self._lock = threading.Lock()

    def publish_pages(self, job_id: str, holder: str, count: int) -> None:
        with self._lock:
            self.tasks += [(job_id, holder)] * count
            self.most_waiting = max(self.most_waiting, len(self.tasks))

    def take_pages(self, helper: Callable[[str, str], None]) -> None:
        raise AssertionError("a test runs the tasks itself")

    def pop(self) -> tuple[str, str] | None:
        with self._lock:
            return self.tasks.pop(0) if self.tasks else None


class CountingEngine(FixedEngine):
    """Counts the pages it reads, by number; ``during[n]`` runs while page n is read."""

    def __init__(self) -> None:
        self.read: list[int] = []
        self.during: dict[int, Callable[[], None]] = {}
        self._lock = threading.Lock()

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        with self._lock:
            self.read.append(options.page_number)
        if (hook := self.during.pop(options.page_number, None)) is not None:
            hook()
        return super().recognize(image, options)


@dataclass
class Node:
    client: TestClient
    tasks: HeldTasks
    worker: JobWorker
    engine: CountingEngine
    key: str

    @property
    def runtime(self) -> Runtime:
        return runtime_of(self.client)

    def submit(self, pages: int) -> str:
        return submit(self.client, self.key, pages_pdf(pages))

    def help_until_done(self) -> None:
        """Run the page tasks published, and those they publish, as other workers would."""
        while (task := self.tasks.pop()) is not None:
            self.worker.help(*task)

    def record(self, job_id: str) -> JobRecord:
        with self.runtime.db.transaction() as session:
            record = JobRepository(session).by_id(job_id)
        assert record is not None
        return record


@pytest.fixture
def node(make_client: Callable[..., TestClient], tmp_path: Path) -> Node:
    """A node whose own threads run nothing (workers 0), and a worker spreading pages on
    :class:`HeldTasks`; leases long enough that no heartbeat beats in a test."""
    engine = CountingEngine()
    client = make_client(Settings(data_dir=tmp_path / "data", workers=0,
                                  job_lease_seconds=3600, reaper_interval_seconds=3600),
                         engine=engine)
    tasks = HeldTasks()
    return Node(client, tasks, spreading_worker(client, tasks), engine, issue(client, "acme"))


def spreading_worker(client: TestClient, tasks: HeldTasks) -> JobWorker:
    """A worker on the node's database and store whose pages spread on ``tasks``."""
    runtime = runtime_of(client)
    return JobWorker(runtime.settings, runtime.db, runtime.worker.documents,
                     runtime.pipeline, runtime.worker.clock, audit=runtime.worker.audit,
                     spread_on=tasks)


def test_every_page_is_read_once_by_the_owner_or_a_helper_and_assembled_in_order(
        node: Node, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    job_id = node.submit(6)
    # While the owner reads its first page, other workers take every task published.
    node.engine.during[1] = node.help_until_done
    spread = node.worker.spread
    assert spread is not None
    opened: list[str] = []
    open_reader = spread.open_reader
    spread.open_reader = lambda job, name: opened.append(name) or open_reader(job, name)

    with caplog.at_level(logging.INFO, logger="ocrvault.jobs.spread"):
        node.worker.process(job_id)

    assert node.engine.read == [1, 2, 3, 4, 5, 6]
    # Each task taken publishes at most the next: never more waiting than at the start.
    assert node.tasks.most_waiting == 5
    helped = [record.getMessage() for record in caplog.records if HELPED in record.message]
    assert helped == [f"job {job_id}: page {n} of 6 {HELPED}" for n in range(2, 7)]
    job = wait_for_job(node.client, job_id, node.key)
    assert job["status"] == "succeeded", job
    assert [page["number"] for page in job["result"]["pages"]] == [1, 2, 3, 4, 5, 6]
    assert parts_left(tmp_path / "data", job_id) == []
    # The helpers' node fetched and opened the job's input once for its five pages, and
    # closed it after the last.
    assert len(opened) == 1 and not spread.readers._kept


class SlowParts:
    """The node's blob store, where fetching a page part is a round trip (as from an
    object store) that lasts until ``expected`` fetches are under way (or 2 s), counting
    how many were under way at once."""

    def __init__(self, blobs: Any, expected: int) -> None:
        self.blobs = blobs
        self.expected = expected
        self.at_once = self.most_at_once = 0
        self._changed = threading.Condition()

    def get(self, key: str) -> bytes | None:
        if f"/{PagePart.FOLDER}/" not in key:
            return cast(bytes | None, self.blobs.get(key))
        with self._changed:
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
            self._changed.notify_all()
            self._changed.wait_for(lambda: self.most_at_once >= self.expected, timeout=2)
            self.at_once -= 1
        return cast(bytes | None, self.blobs.get(key))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.blobs, name)


def test_the_owner_fetches_the_helpers_parts_several_at_once_and_keeps_page_order(
        node: Node) -> None:
    job_id = node.submit(6)
    node.engine.during[1] = node.help_until_done  # helpers read pages 2 to 6
    documents = node.worker.documents
    slow = SlowParts(documents.blobs, expected=5)
    documents.blobs = cast(BlobStore, slow)

    node.worker.process(job_id)

    assert node.engine.read == [1, 2, 3, 4, 5, 6]
    assert slow.most_at_once == 5  # the five helped pages, not one after another
    job = wait_for_job(node.client, job_id, node.key)
    assert [page["number"] for page in job["result"]["pages"]] == [1, 2, 3, 4, 5, 6]


def test_at_most_page_spread_tasks_of_a_job_wait_and_a_one_page_job_publishes_none(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = make_client(Settings(data_dir=tmp_path / "data", workers=0, page_spread=3,
                                  job_lease_seconds=3600, reaper_interval_seconds=3600),
                         engine=CountingEngine())
    tasks = HeldTasks()
    worker = spreading_worker(client, tasks)
    key = issue(client, "acme")

    worker.process(submit(client, key, pages_pdf(1)))
    assert tasks.tasks == []
    worker.process(submit(client, key, pages_pdf(10)))  # it reads every page itself
    assert tasks.most_waiting == 3


def test_a_page_task_of_a_claim_that_lapsed_reads_and_writes_nothing(node: Node,
                                                                     tmp_path: Path) -> None:
    job_id = node.submit(4)
    lapsed = node.worker.leases.claim(job_id)
    assert lapsed is not None
    with node.runtime.db.transaction() as session:  # its lease ran out; it was reclaimed
        assert LeaseRepository(session).requeue_expired(job_id, datetime.now(UTC)
                                                        + timedelta(days=1))
    current = node.worker.leases.claim(job_id)
    assert current is not None

    node.worker.help(job_id, lapsed.holder)

    assert node.engine.read == []
    assert node.record(job_id).pages_done == 0
    assert parts_left(tmp_path / "data", job_id) == []
    assert PageClaims(node.runtime.db, job_id, current.holder, 4).take() == 0


def test_a_page_whose_helper_died_is_read_by_the_owner_once_no_page_is_counted_for_a_while(
        node: Node, caplog: pytest.LogCaptureFixture) -> None:
    job_id = node.submit(3)
    lease = node.worker.leases.claim(job_id)
    assert lease is not None
    # A helper took the first page and died with it.
    assert PageClaims(node.runtime.db, job_id, lease.holder, 3).take() == 0
    now = [0.0]
    def no_reader(job: JobRecord, name: str) -> DocumentReader:
        pytest.fail("the owner reads its own job")

    spread = PageSpread(node.runtime.db, node.worker.documents, node.tasks, tasks=2,
                        page_timeout=1.0, open_reader=no_reader,
                        sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
                        monotonic=lambda: now[0])
    pipeline = node.runtime.pipeline
    data, params = pages_pdf(3), pipeline.params(None, None, None)

    with caplog.at_level(logging.WARNING, logger="ocrvault.jobs.spread"), pipeline.open(
            data, pipeline.check(data, params), params) as reader:
        results = spread.read_all(key_of(node.record(job_id)), lease.holder, 3, reader.read)

    assert [result.page.number for result in results] == [1, 2, 3]
    assert node.engine.read == [2, 3, 1]  # its own pages, then the lost one
    assert "1 of its pages were handed out and never counted" in caplog.text
    assert now[0] > 1.0 + STRAGGLER_MARGIN_SECONDS


def test_a_page_part_opens_under_its_own_name_only(node: Node) -> None:
    """A part is sealed with its claim and page as context: one copied over another
    page's name, or another claim's, does not open, so a helper of a lapsed claim (or
    whoever can write to the store) cannot slip a page into the wrong place."""
    job_id = node.submit(2)
    record = node.record(job_id)
    documents = node.worker.documents
    page = FixedEngine().recognize(PILImage.new("L", (200, 100), "white"),
                                   RecognizeOptions(page_number=1))
    documents.put(key_of(record), PagePart("c1", 0), part_of(PageResult(page, frozenset())))
    sealed = documents.blobs.get(blob_key(record.tenant_id, job_id, "pages", "c1", "0"))
    assert sealed is not None
    for claim, index in (("c1", 1), ("c2", 0)):
        documents.blobs.put(blob_key(record.tenant_id, job_id, "pages", claim, str(index)),
                            sealed)

    assert documents.find(key_of(record), PagePart("c1", 0)) == part_of(
        PageResult(page, frozenset()))
    for claim, index in (("c1", 1), ("c2", 0)):
        with pytest.raises(IntegrityError):
            documents.find(key_of(record), PagePart(claim, index))
    assert documents.find(key_of(record), PagePart("c1", 5)) is None

    documents.delete_pages(record.tenant_id, job_id)
    assert documents.find(key_of(record), PagePart("c1", 0)) is None
    assert documents.get(key_of(record), ObjectKind.INPUT)  # the rest of the job stays


def test_a_page_task_on_redis_carries_the_job_id_and_the_claim_and_nothing_else(
        space: BrokerSpace, tmp_path: Path) -> None:
    queue = CeleryQueue(space.settings(tmp_path / "data", workers=0), 0)
    holder = new_holder()

    queue.publish_pages("job-1", holder, 2)

    raw = redis.Redis.from_url(space.url).lrange(space.queue_name, 0, -1)
    assert len(raw) == 2
    for message in map(json.loads, raw):
        assert message["content-type"] == "application/json"  # never pickle
        assert message["headers"]["task"] == PAGE_TASK_NAME
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        assert (args, kwargs) == (["job-1", holder], {})


class BrokerDown(HeldTasks):
    """A PageQueue whose broker cannot be reached."""

    def publish_pages(self, job_id: str, holder: str, count: int) -> None:
        raise QueueUnavailable("cannot reach the Celery broker (a test's)")


def test_a_job_whose_page_tasks_cannot_be_published_is_read_by_its_owner_alone(
        node: Node) -> None:
    worker = spreading_worker(node.client, BrokerDown())
    job_id = node.submit(3)

    worker.process(job_id)

    job = wait_for_job(node.client, job_id, node.key)
    assert job["status"] == "succeeded", job
    assert sorted(node.engine.read) == [1, 2, 3]


class FakeReader:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_node_keeps_at_most_two_documents_open_and_closes_a_dropped_one_after_its_last_use(
        ) -> None:
    readers = OpenReaders(size=2)
    made: dict[str, FakeReader] = {}

    def opener(name: str) -> Callable[[], DocumentReader]:
        return lambda: made.setdefault(name, FakeReader())  # type: ignore[return-value]

    with readers.using("a", opener("a")):
        with readers.using("a", opener("a")) as again:
            assert again is made["a"]  # opened once, shared
        readers.drop("a")
        assert not made["a"].closed  # still read by this thread
    assert made["a"].closed
    for name in ("b", "c", "d"):
        with readers.using(name, opener(name)):
            pass
    assert [made[name].closed for name in ("b", "c", "d")] == [True, False, False]
    readers.close()
    assert made["c"].closed and made["d"].closed


def test_a_running_job_shows_no_error_that_a_page_recorded_for_its_owner(node: Node) -> None:
    job_id = node.submit(3)
    lease = node.worker.leases.claim(job_id)
    assert lease is not None
    PageClaims(node.runtime.db, job_id, lease.holder, 3).fail(
        OcrVaultError(ErrorCode.CORRUPT_FILE, "Page 2 is unreadable."))

    job = node.client.get(f"/v1/jobs/{job_id}", headers=auth(node.key)).json()

    assert (job["status"], job["error"]) == ("running", None)
    assert PageClaims(node.runtime.db, job_id, lease.holder, 3).take() is None  # stopped

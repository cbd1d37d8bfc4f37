"""A job's pages as the unit of work, through the service: a PDF read on two workers is
the same document as read page after page, a failing page fails the job with its error,
and a job deleted mid-way starts no further page."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from PIL.Image import Image

from ocrvault.config import Settings
from ocrvault.engines.base import RecognizeOptions
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.model import Page
from tests.conftest import auth, issue, runtime_of, wait_for_job
from tests.docgen import pdf_of, text_page
from tests.engine_fakes import BlockingEngine, FixedEngine

WORDS = ("Invoice", "Receipt", "Order", "Ledger", "Payment", "Balance")


def pages_pdf(count: int) -> bytes:
    return pdf_of([text_page([f"{WORDS[n % len(WORDS)]} number {n + 1}"], size=(900, 300),
                             font_px=36) for n in range(count)])


def submit(client: TestClient, key: str, data: bytes) -> str:
    response = client.post("/v1/read", content=data, headers=auth(key))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_a_pdf_read_on_two_workers_is_the_document_read_page_after_page(
        make_client: Callable[..., TestClient], tmp_path: Path,
        engine: TesseractEngine) -> None:
    client = make_client(Settings(data_dir=tmp_path / "data", workers=2))
    key = issue(client, "acme")
    data = pages_pdf(5)

    job = wait_for_job(client, submit(client, key, data), key)

    assert job["status"] == "succeeded", job
    pipeline = runtime_of(client).pipeline
    params = pipeline.params(None, None, None)
    sequential = pipeline.run(data, pipeline.check(data, params), params)
    assert job["result"] == sequential.model_dump(mode="json")
    assert [page["number"] for page in job["result"]["pages"]] == [1, 2, 3, 4, 5]
    assert "number 4" in job["result"]["pages"][3]["lines"][0]["text"]


class FailsOnPage(FixedEngine):
    """Reads every page but ``number``, which it rejects as a damaged page would be."""

    def __init__(self, number: int) -> None:
        self.number = number

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        if options.page_number == self.number:
            raise InputRejected(ErrorCode.CORRUPT_FILE, f"Page {self.number} is unreadable.")
        return super().recognize(image, options)


def test_a_failing_page_fails_the_job_with_that_pages_error(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = make_client(Settings(data_dir=tmp_path / "data", workers=2),
                         engine=FailsOnPage(3))
    key = issue(client, "acme")

    job = wait_for_job(client, submit(client, key, pages_pdf(6)), key)

    assert job["status"] == "failed"
    assert job["error"] == {"code": "corrupt_file", "detail": "Page 3 is unreadable."}


class CountingBlockingEngine(BlockingEngine):
    """Holds the first page until released, and counts the pages it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: list[int] = []
        self._lock = threading.Lock()

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        with self._lock:
            self.pages.append(options.page_number)
        return super().recognize(image, options)


def test_a_job_deleted_mid_way_starts_no_further_page_and_leaves_nothing(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    engine = CountingBlockingEngine()
    client = make_client(Settings(data_dir=tmp_path / "data", workers=1), engine=engine)
    key = issue(client, "acme")
    job_id = submit(client, key, pages_pdf(6))
    assert engine.started.wait(30)

    assert client.delete(f"/v1/jobs/{job_id}", headers=auth(key)).status_code == 200
    engine.release.set()
    assert runtime_of(client).queue.stop(timeout=30) == 0  # once the job's owner is done

    assert engine.pages == [1]
    assert not [path for path in (tmp_path / "data").rglob("*") if job_id in str(path)]
    assert client.get(f"/v1/jobs/{job_id}", headers=auth(key)).status_code in (404, 410)


def test_with_one_worker_another_tenants_receipt_is_read_between_a_long_pdfs_pages(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    engine = CountingBlockingEngine()
    client = make_client(Settings(data_dir=tmp_path / "data", workers=1), engine=engine)
    busy, other = issue(client, "busy"), issue(client, "other")
    long_pdf = submit(client, busy, pages_pdf(12))
    assert engine.started.wait(30)  # its first page holds the only worker

    receipt = submit(client, other, pages_pdf(1))
    assert runtime_of(client).worker.pages.wait_open(2, 30)  # opened beside the PDF
    engine.release.set()

    done = {job_id: wait_for_job(client, job_id, key)
            for job_id, key in ((long_pdf, busy), (receipt, other))}
    assert [job["status"] for job in done.values()] == ["succeeded", "succeeded"]
    assert done[receipt]["completed_at"] < done[long_pdf]["completed_at"]
    # The receipt's page waited one turn of the PDF's, not the rest of the PDF.
    assert engine.pages.index(1, 1) <= 3

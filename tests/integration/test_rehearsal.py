"""The start-up rehearsal of a job's statements (jobs/rehearsal.py): after a start, a job's
requests compile nothing, and the rehearsal leaves nothing behind, even when it fails."""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, event, select
from sqlalchemy.engine.default import CACHE_MISS

from ocrvault.audit import verify_log
from ocrvault.config import Settings
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.jobs.params import ReadParams
from ocrvault.jobs.rehearsal import rehearse
from ocrvault.model import JobStatus
from ocrvault.principal import RequestContext, Scope
from ocrvault.runtime import Runtime
from ocrvault.store.db import Database
from ocrvault.store.tables import Base
from tests.docgen import encode, text_page

PAGE = encode(text_page(["Rehearsed statements"], size=(600, 200)), "PNG")


@pytest.fixture
def one_thread(settings: Settings) -> Settings:
    """No worker threads: the test runs each job itself, on its own thread."""
    return settings.model_copy(update={"workers": 0})


@contextmanager
def compiled_here(db: Database) -> Iterator[list[str]]:
    """The statements this thread runs that SQLAlchemy had to compile (not in its cache)."""
    here, compiled = threading.get_ident(), []

    def note(_conn: Connection, _cursor: Any, statement: str, _params: Any, context: Any,
             _many: bool) -> None:
        if threading.get_ident() == here and context.cache_hit is CACHE_MISS:
            compiled.append(statement.split("\n")[0][:80])

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield compiled
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


def every_row(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    with db.engine.connect() as connection:
        return {table.name: sorted(map(tuple, connection.execute(select(table))), key=repr)
                for table in Base.metadata.sorted_tables}


def stored_files(settings: Settings) -> list[str]:
    """The blobs and the tenants' keys: what a job that landed would have left."""
    return sorted(str(path) for root in (settings.blob_dir, settings.resolved_key_store_dir)
                  for path in root.rglob("*") if path.is_file())


def test_a_first_job_after_a_start_compiles_none_of_its_statements(
        one_thread: Settings, engine: TesseractEngine) -> None:
    first = Runtime.build(one_thread, engine=engine)
    secret = first.access.bootstrap_tenant("acme").secret
    first.start()
    try:  # the tenant's keys and audit chain exist, as on any restart but the very first
        principal = first.access.authenticate(secret, RequestContext("r1"), Scope.READ_SUBMIT)
        first.worker.process(first.jobs.submit(principal, PAGE, ReadParams()).id)
    finally:
        first.stop()

    # A fresh engine, as a restart has: its compiled cache is empty until the rehearsal.
    restarted = Runtime.build(one_thread, engine=engine)
    restarted.start()
    try:
        with compiled_here(restarted.db) as compiled:
            principal = restarted.access.authenticate(secret, RequestContext("r2"),
                                                      Scope.READ_SUBMIT)
            job_id = restarted.jobs.submit(principal, PAGE, ReadParams()).id
            restarted.worker.process(job_id)
            job = restarted.jobs.status(principal, job_id)
    finally:
        restarted.stop()
    assert job.status is JobStatus.SUCCEEDED
    assert compiled == []


def test_the_rehearsal_leaves_no_row_blob_or_audit_entry(
        one_thread: Settings, engine: TesseractEngine) -> None:
    runtime = Runtime.build(one_thread, engine=engine)
    runtime.access.bootstrap_tenant("acme")
    before, kept = every_row(runtime.db), stored_files(one_thread)
    try:
        runtime.start()  # rehearses the API's side and the worker's
        for part in (runtime.access.rehearse, runtime.jobs.rehearse, runtime.worker.rehearse):
            part()  # and again, each on its own: a rehearsal that lands would show twice
        after = every_row(runtime.db)
        report = verify_log(runtime.db, runtime.base.audit.signer)
    finally:
        runtime.stop()
    after.pop("cluster_locks")  # the scheduler's lease, taken by the start
    before.pop("cluster_locks")
    assert after == before
    assert stored_files(one_thread) == kept
    assert report.ok, [str(chain) for chain in report.broken]


class Refusing:
    """An audit log that refuses every entry: the rehearsal fails half-way, after the
    made-up tenant and job are written."""

    def record(self, *_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the audit log refuses")


def test_a_rehearsal_that_fails_half_way_is_rolled_back_and_only_logged(
        one_thread: Settings, engine: TesseractEngine,
        caplog: pytest.LogCaptureFixture) -> None:
    runtime = Runtime.build(one_thread, engine=engine)
    runtime.start()
    try:
        before = every_row(runtime.db)
        runtime.jobs.audit = Refusing()
        with caplog.at_level(logging.WARNING, "ocrvault.jobs.rehearsal"):
            rehearse(runtime.jobs.rehearse)  # raises nothing
        assert every_row(runtime.db) == before
    finally:
        runtime.stop()
    assert "start-up rehearsal (JobService.rehearse) failed" in caplog.text
    assert "the audit log refuses" in caplog.text


def test_a_started_node_has_described_its_engines_before_any_request(
        one_thread: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Describing RapidOCR reads its package's version from the installed metadata,
    milliseconds that a first request would wait for; a start does it."""
    runtime = Runtime.build(one_thread)  # the registered engines, described by the registry
    runtime.start()
    try:
        def unreadable(name: str) -> str:
            raise AssertionError(f"{name}'s metadata read under a request")

        monkeypatch.setattr(importlib.metadata, "version", unreadable)
        assert {"eng", "deu"} <= runtime.engines.all_languages()
    finally:
        runtime.stop()

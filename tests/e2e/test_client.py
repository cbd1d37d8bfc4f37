"""The Python client against a live server: real uvicorn on loopback, real sockets.

OCR content does not matter here except in one read with real Tesseract, so the server
runs a fake engine that takes a moment a page (progress has something to show). Its rate
limiter runs on a FakeClock that the client's injected ``sleep`` moves: a real 429 with a
real ``Retry-After`` of a minute is waited out without a minute passing.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ocrvault.access.ratelimit import TokenBuckets
from ocrvault.api.app import create_app
from ocrvault.cli import app
from ocrvault.client import (
    ApiError,
    AsyncClient,
    BadRequest,
    Client,
    CustomerKey,
    Forbidden,
    Gone,
    Job,
    JobStatus,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Retry,
    Unauthorized,
)
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.runtime import Runtime
from tests.clocks import FakeClock
from tests.databases import TestDatabases
from tests.docgen import encode, pdf_of, text_page
from tests.engine_fakes import FAKE_LANGUAGES, FIXED_LINES, SlowEngine
from tests.servers import free_port, serving

MAX_FILE = 2_000_000
PNG = encode(text_page(["Client test"], size=(600, 200)), "PNG")
FIXED_TEXT = "\n".join(FIXED_LINES)


@dataclass
class Live:
    url: str
    runtime: Runtime
    clock: FakeClock

    def admin_key(self, tenant: str) -> str:
        return self.runtime.access.bootstrap_tenant(tenant).secret

    def client(self, key: str, **options: object) -> Client:
        return Client(self.url, key, poll_interval=0.05, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def live(module_databases: TestDatabases,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = module_databases.settings(tmp_path_factory.mktemp("client") / "data", workers=2,
                                         reaper_interval_seconds=3600, max_file_bytes=MAX_FILE)
    clock = FakeClock(datetime.now(UTC))
    runtime = Runtime.build(settings, engine=SlowEngine(0.2),
                            rate_limiter=TokenBuckets(clock=clock))
    with serving(create_app(runtime)) as port:
        yield Live(f"http://127.0.0.1:{port}", runtime, clock)


def test_submit_wait_output_and_delete_from_path_bytes_and_file(live: Live,
                                                                tmp_path: Path) -> None:
    path = tmp_path / "page.png"
    path.write_bytes(PNG)
    with live.client(live.admin_key("files")) as client:
        for upload in (path, str(path), PNG, io.BytesIO(PNG)):
            created = client.submit(upload, languages=["eng", "deu"], outputs=["text"],
                                    retention=timedelta(hours=1))
            assert created.status is JobStatus.QUEUED
            job = client.wait(created.id, timeout=60)
            assert job.status is JobStatus.SUCCEEDED and job.result is not None
            assert job.result.text == FIXED_TEXT
            assert job.languages == ["eng", "deu"]
            assert client.output(job.id, "text").decode().strip() == FIXED_TEXT
            assert client.get_job(job.id).id == job.id
            receipt = client.delete_job(job.id)
            assert receipt.id == job.id and "result" in receipt.deleted
            with pytest.raises(Gone) as gone:
                client.get_job(job.id)
            assert gone.value.code == "job_deleted"


def test_progress_callback_sees_each_state_up_to_the_end(live: Live) -> None:
    pdf = pdf_of([text_page([f"Page {n}"], size=(400, 200)) for n in (1, 2, 3)])
    seen: list[Job] = []
    with live.client(live.admin_key("progress")) as client:
        job = client.wait(client.submit(pdf).id, progress=seen.append, timeout=60)
    assert job.status is JobStatus.SUCCEEDED
    assert seen[-1] == job and len(seen) >= 2  # 3 pages at 0.2 s: polled before the end
    assert {state.status for state in seen[:-1]} <= {JobStatus.QUEUED, JobStatus.RUNNING}
    counts = [state.pages_done for state in seen if state.pages_done is not None]
    assert counts == sorted(counts)  # never goes back (absent on servers without progress)
    if job.pages_total is not None:
        assert job.pages_done == job.pages_total == 3


def test_the_async_client_does_the_same_over_httpx_async_client(live: Live) -> None:
    key = live.admin_key("async")

    async def flow() -> tuple[Job, bytes, int]:
        async with AsyncClient(live.url, key, poll_interval=0.05) as client:
            created = await client.submit(PNG)
            job = await client.wait(created.id, timeout=60)
            text = await client.output(job.id)
            keys = await client.list_keys()
            with pytest.raises(NotFound):
                await client.get_job("job_doesnotexist")
            await client.delete_job(job.id)
            return job, text, len(keys)

    job, text, keys = asyncio.run(flow())
    assert job.result is not None and job.result.text == FIXED_TEXT
    assert text.decode().strip() == FIXED_TEXT
    assert keys == 1


def test_errors_are_typed_with_code_detail_and_request_id(live: Live) -> None:
    with live.client("ocv_live_wrong") as stranger, pytest.raises(Unauthorized) as unauthorized:
        stranger.get_job("job_x")
    assert unauthorized.value.status == 401 and unauthorized.value.code == "unauthorized"
    assert unauthorized.value.detail and unauthorized.value.request_id

    with live.client(live.admin_key("errors")) as client:
        with pytest.raises(NotFound) as missing:
            client.get_job("job_doesnotexist")
        assert missing.value.code == "job_not_found"
        assert missing.value.request_id and missing.value.request_id in str(missing.value)
        with pytest.raises(PayloadTooLarge) as large:
            client.submit(b"\0" * (MAX_FILE + 1))
        assert large.value.code == "file_too_large"
        with pytest.raises(ApiError) as bad:
            client.submit(PNG, languages="xx_nonexistent")
        assert bad.value.status == 400 and bad.value.code == "invalid_parameter"


def test_a_429_is_waited_out_for_retry_after_then_succeeds(live: Live) -> None:
    with live.client(live.admin_key("limits")) as admin:
        limited = admin.create_key("one a minute", role="developer", rate_limit_per_minute=1)
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the server's limiter clock moves instead of time
        slept.append(seconds)
        live.clock.advance(timedelta(seconds=seconds))

    with live.client(limited.secret, retry=Retry(max_delay=120), sleep=sleep) as client:
        created = client.submit(PNG)  # the minute's one request
        assert client.get_job(created.id).id == created.id  # 429, waited for, retried
    assert len(slept) == 1 and 55 <= slept[0] <= 61  # Retry-After (plus jitter under 1 s)


def test_a_retry_after_beyond_max_delay_is_raised_at_once(live: Live) -> None:
    with live.client(live.admin_key("impatient")) as admin:
        limited = admin.create_key("one a minute", role="developer", rate_limit_per_minute=1)
    slept: list[float] = []
    with live.client(limited.secret, retry=Retry(max_delay=5), sleep=slept.append) as client:
        created = client.submit(PNG)
        with pytest.raises(RateLimited) as limited_error:
            client.get_job(created.id)
    assert slept == []
    assert limited_error.value.code == "rate_limited"
    assert limited_error.value.retry_after is not None and limited_error.value.retry_after > 5


def test_keys_are_created_listed_read_rotated_and_revoked(live: Live) -> None:
    with live.client(live.admin_key("keys")) as admin:
        made = admin.create_key("ci", scopes=["read:submit", "jobs:read"],
                                expires_at=datetime.now(UTC) + timedelta(days=1),
                                max_concurrent_jobs=3)
        assert made.secret not in repr(made)
        assert set(made.scopes) == {"jobs:read", "read:submit"}
        assert made.id in {key.id for key in admin.list_keys()}
        assert admin.get_key(made.id).max_concurrent_jobs == 3
        rotated = admin.rotate_key(made.id, grace=timedelta(0))
        assert rotated.secret != made.secret and rotated.rotated_at is not None
        with live.client(made.secret) as old, pytest.raises(Unauthorized):
            old.get_job("job_x")
        revoked = admin.revoke_key(made.id)
        assert revoked.revoked_at is not None
        with live.client(rotated.secret) as new, pytest.raises(Unauthorized):
            new.get_job("job_x")
        with pytest.raises(NotFound) as missing:
            admin.get_key("key_doesnotexist")
        assert missing.value.code == "key_not_found"


def test_retention_policies_of_the_tenant_and_of_a_key(live: Live) -> None:
    hours = {name: timedelta(hours=n) for n, name in enumerate(
        ("input", "result", "outputs", "failed_inputs", "job_metadata"), start=1)}
    with live.client(live.admin_key("retention")) as admin:
        before = admin.get_retention()
        assert before.environment == "live"
        policy = admin.put_retention(**hours)
        assert (policy.input, policy.job_metadata) == (3600, 5 * 3600)
        assert admin.get_retention(environment="live") == policy
        key = admin.create_key("short", role="developer")
        short = admin.put_retention(key_id=key.id, input=0, result=60, outputs=60,
                                    job_metadata=60, failed_inputs=0)
        assert admin.get_retention(key_id=key.id) == short
        assert short.result == 60


def test_audit_is_queried_by_filter_and_cursor_and_read_by_id(live: Live) -> None:
    with live.client(live.admin_key("audit")) as admin:
        for name in ("one", "two", "three"):
            admin.create_key(name, role="reviewer")
        first = admin.list_audit(action="key:api_key:created", limit=2)
        assert len(first.entries) == 2 and first.next_cursor
        rest = admin.list_audit(action="key:api_key:created", limit=2, cursor=first.next_cursor)
        entries = [*first.entries, *rest.entries]
        assert all(e.action == "key:api_key:created" for e in entries)
        assert len({e.id for e in entries}) == 4  # the bootstrap key's and three, no repeat
        assert admin.get_audit_entry(entries[0].id) == entries[0]
        assert admin.list_audit(since=datetime.now(UTC) + timedelta(hours=1)).entries == []


def test_a_customer_key_job_opens_with_that_key_only(live: Live) -> None:
    key = CustomerKey.generate()
    with live.client(live.admin_key("sse-c")) as client:
        job = client.wait(client.submit(PNG, customer_key=key).id, customer_key=key,
                          timeout=60)
        assert job.result is not None and job.result.text == FIXED_TEXT
        assert client.output(job.id, customer_key=key).decode().strip() == FIXED_TEXT
        with pytest.raises(Forbidden) as refused:
            client.get_job(job.id)
        assert refused.value.code == "customer_key_required"
        with pytest.raises(Forbidden) as wrong:
            client.get_job(job.id, customer_key=CustomerKey.generate())
        assert wrong.value.code == "customer_key_mismatch"
    assert key.base64() not in repr(key)


def test_jobs_are_deleted_in_bulk(live: Live) -> None:
    with live.client(live.admin_key("bulk")) as client:
        ids = [client.wait(client.submit(PNG).id, timeout=60).id for _ in range(2)]
        deleted = client.delete_jobs(datetime.now(UTC) + timedelta(seconds=1),
                                     status="succeeded")
        assert deleted.deleted == 2 and sorted(deleted.ids) == sorted(ids)


def test_jobs_are_listed_by_page_with_filters(live: Live) -> None:
    with live.client(live.admin_key("listing")) as client:
        ids = {client.wait(client.submit(PNG).id, timeout=60).id for _ in range(3)}
        try:
            first = client.list_jobs(limit=2, status="succeeded")
        except ApiError as error:
            if error.status in (404, 405):  # the route does not exist on this server yet
                pytest.skip(f"GET /v1/jobs is not served ({error.status} {error.code})")
            raise
        assert len(first.jobs) == 2 and first.next_cursor
        rest = client.list_jobs(limit=2, status="succeeded", cursor=first.next_cursor)
        assert {job.id for job in [*first.jobs, *rest.jobs]} == ids
        assert all(job.result is None for job in first.jobs)  # metadata only
        assert client.list_jobs(since=datetime.now(UTC) + timedelta(hours=1)).jobs == []


def test_languages_and_engines_are_listed(live: Live) -> None:
    with live.client(live.admin_key("capabilities")) as client:
        try:
            languages = client.languages()
        except NotFound as error:  # the routes do not exist on this server yet
            pytest.skip(f"GET /v1/languages is not served ({error.status} {error.code})")
        engines = client.engines()
    assert {language.code for language in languages} == set(FAKE_LANGUAGES)
    assert all(language.name and language.engines == ["fake-slow"] for language in languages)
    assert [(e.name, e.default, sorted(e.languages)) for e in engines] == [
        ("fake-slow", True, sorted(FAKE_LANGUAGES))]


@pytest.fixture(scope="module")
def tesseract(module_databases: TestDatabases, tmp_path_factory: pytest.TempPathFactory,
              engine: TesseractEngine) -> Iterator[tuple[str, str]]:
    """A second live server, with real OCR; yields its URL and an admin key."""
    settings = module_databases.settings(tmp_path_factory.mktemp("ocr") / "data", workers=1,
                                         reaper_interval_seconds=3600)
    runtime = Runtime.build(settings, engine=engine)
    with serving(create_app(runtime)) as port:
        yield f"http://127.0.0.1:{port}", runtime.access.bootstrap_tenant("ocr").secret


def test_read_sync_with_real_ocr(tesseract: tuple[str, str], tmp_path: Path) -> None:
    url, key = tesseract
    page = tmp_path / "note.png"
    page.write_bytes(encode(text_page(["Quarterly report ready"], size=(1200, 200)), "PNG"))
    with Client(url, key) as client:
        document = client.read_sync(page, languages="eng")
    assert document.text.strip() == "Quarterly report ready"
    assert document.engine.name == "tesseract" and document.languages == ["eng"]
    assert [line.text for line in document.pages[0].lines] == ["Quarterly report ready"]


def test_the_engine_choice_reaches_the_server(tesseract: tuple[str, str], tmp_path: Path) -> None:
    url, key = tesseract
    page = tmp_path / "note.png"
    page.write_bytes(encode(text_page(["Engine choice"], size=(900, 200)), "PNG"))
    with Client(url, key) as client:
        assert client.read_sync(page, engine="tesseract").text.strip() == "Engine choice"
        with pytest.raises(BadRequest) as refused:
            client.submit(page, engine="no-such-engine")
    assert refused.value.code == "invalid_parameter" and "engine" in refused.value.detail


def test_cli_submit_waits_and_prints_the_text_or_the_job_ids(live: Live, tmp_path: Path) -> None:
    page = tmp_path / "page.png"
    page.write_bytes(PNG)
    env = {"OCRVAULT_URL": live.url, "OCRVAULT_API_KEY": live.admin_key("cli")}
    waited = CliRunner().invoke(app, ["submit", str(page), "--wait"], env=env)
    assert waited.exit_code == 0, waited.output
    assert waited.stdout.strip() == FIXED_TEXT

    queued = CliRunner().invoke(app, ["submit", str(page), str(page), "--url", live.url],
                                env=env)
    assert queued.exit_code == 0, queued.output
    ids = [line.split("\t")[1] for line in queued.stdout.splitlines()]
    with live.client(env["OCRVAULT_API_KEY"]) as client:
        assert all(client.wait(job_id, timeout=60).result for job_id in ids) and len(ids) == 2

    refused = CliRunner().invoke(app, ["submit", str(page), "--key", "ocv_live_wrong"],
                                 env={"OCRVAULT_URL": live.url})
    assert refused.exit_code == 1
    assert "unauthorized" in refused.stderr

    down = f"http://127.0.0.1:{free_port()}"
    unreachable = CliRunner().invoke(app, ["submit", str(page), "--url", down], env=env)
    assert unreachable.exit_code == 1
    assert f"cannot reach {down}" in unreachable.stderr


def readme_python_blocks(section: str) -> list[str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    text = readme.split(f"### {section}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return [block.split("\n```", 1)[0] for block in text.split("```python\n")[1:]]


def test_the_readme_python_client_examples_run_as_written(
        live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    blocks = readme_python_blocks("Python client")
    assert len(blocks) == 2
    (tmp_path / "invoice.pdf").write_bytes(pdf_of([text_page(["Invoice"], size=(400, 200))]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("URL", live.url)
    monkeypatch.setenv("KEY", live.admin_key("readme"))
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    assert printed.count(FIXED_TEXT) == 2  # the result's text and the text output
    assert "410 job_deleted" in printed
    assert printed.count(" succeeded\n") == 2  # the async block's two jobs

"""The client's retry, backoff and progress logic on ``httpx.MockTransport``: the answers a
live server gives only rarely (503, a dropped connection, an HTTP-date Retry-After)."""

from __future__ import annotations

import ast
import asyncio
import email.utils
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from ocrvault import client as client_module
from ocrvault.client import (
    ApiError,
    AsyncClient,
    Client,
    Job,
    RateLimited,
    Retry,
    Unavailable,
    progress_bar,
)

PROBLEM = {"type": "https://ocrvault.dev/problems/server_busy", "title": "Service Unavailable",
           "status": 503, "detail": "Too many uploads at once; try again.", "code": "server_busy"}
JOB = {"id": "j1", "status": "queued", "created_at": "2030-01-01T00:00:00Z"}

Handler = Callable[[httpx.Request], httpx.Response]


def answers(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler giving ``responses`` in turn (raising the exceptions), and what it got."""
    queue: Iterator[httpx.Response | Exception] = iter(responses)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = next(queue)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle, seen


def busy(retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return httpx.Response(503, json=PROBLEM, headers={
        **headers, "Content-Type": "application/problem+json", "X-Request-Id": "req-1"})


def client_on(handler: Handler, slept: list[float], **retry: object) -> Client:
    return Client("http://ocr.test", "ocv_test_key", transport=httpx.MockTransport(handler),
                  retry=Retry(jitter=lambda: 1.0, **retry),  # type: ignore[arg-type]
                  sleep=slept.append)


def test_503_without_retry_after_backs_off_exponentially_up_to_the_attempts() -> None:
    handler, seen = answers(busy(), busy(), busy(), busy())
    slept: list[float] = []
    with client_on(handler, slept, attempts=4, backoff=0.5) as client, \
            pytest.raises(Unavailable) as error:
        client.get_job("j1")
    assert len(seen) == 4
    assert slept == [0.5, 1.0, 2.0]  # jitter 1.0: the top of each window
    assert (error.value.status, error.value.code, error.value.request_id) == (
        503, "server_busy", "req-1")


def test_jitter_keeps_each_wait_within_half_to_all_of_its_window() -> None:
    policy = Retry(backoff=1.0, max_delay=4.0, jitter=lambda: 0.0)
    response = httpx.Response(503)
    assert [policy.delay(n, "GET", response) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, None]
    assert Retry(backoff=1.0, max_delay=3.0, attempts=9, jitter=lambda: 1.0).delay(
        6, "GET", response) == 3.0  # capped


def test_retry_after_seconds_and_http_dates_are_honoured() -> None:
    soon = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    handler, seen = answers(busy("3"), busy(soon), httpx.Response(200, json=JOB))
    slept: list[float] = []
    with client_on(handler, slept, backoff=0.5) as client:
        assert client.get_job("j1").id == "j1"
    assert slept[0] == 3.5  # 3 s asked, plus jitter of at most one backoff
    assert 18 < slept[1] <= 20.5
    assert len(seen) == 3


def test_a_retry_after_longer_than_max_delay_is_raised_not_waited() -> None:
    handler, seen = answers(httpx.Response(429, headers={"Retry-After": "3600"}, json={
        **PROBLEM, "status": 429, "code": "quota_exceeded"}))
    slept: list[float] = []
    with client_on(handler, slept, max_delay=30) as client, pytest.raises(RateLimited) as error:
        client.get_job("j1")
    assert slept == [] and len(seen) == 1
    assert (error.value.code, error.value.retry_after) == ("quota_exceeded", 3600)


def test_connection_errors_are_retried_for_idempotent_methods_only() -> None:
    dropped = httpx.ConnectError("connection refused")
    handler, seen = answers(dropped, httpx.Response(200, json=JOB))
    slept: list[float] = []
    with client_on(handler, slept) as client:
        assert client.get_job("j1").id == "j1"
    assert len(seen) == 2 and len(slept) == 1

    handler, seen = answers(httpx.ReadError("reset"))
    with client_on(handler, slept) as client, pytest.raises(httpx.ReadError):
        client.submit(b"%PDF-")  # a POST may have been received: never sent twice
    assert len(seen) == 1


def test_errors_that_are_no_problem_json_still_raise_api_error() -> None:
    handler, _ = answers(httpx.Response(502, text="<html>Bad Gateway</html>",
                                        headers={"Content-Type": "text/html"}))
    with client_on(handler, []) as client, pytest.raises(ApiError) as error:
        client.get_job("j1")
    assert (error.value.status, error.value.code) == (502, "http_error")
    assert "Bad Gateway" in error.value.detail


def test_ids_cannot_walk_to_another_route() -> None:
    handler, seen = answers()
    with client_on(handler, []) as client:
        for bad in ("../keys", "a/b", "..", "", "x?y", "%2e%2e"):
            with pytest.raises(ValueError):
                client.delete_job(bad)
    assert seen == []


def test_the_async_flavour_retries_and_polls_through_the_same_core() -> None:
    running = {**JOB, "status": "running", "pages_done": 1, "pages_total": 2}
    done = {**JOB, "status": "failed", "error": {"code": "corrupt_file", "detail": "bad"}}
    handler, seen = answers(busy("0"), httpx.Response(200, json=running),
                            httpx.Response(200, json=done))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def flow() -> list[Job]:
        states: list[Job] = []
        async with AsyncClient("http://ocr.test", "k", poll_interval=0.2, sleep=sleep,
                               transport=httpx.MockTransport(handler),
                               retry=Retry(jitter=lambda: 0.0)) as client:
            await client.wait("j1", progress=states.append)
        return states

    states = asyncio.run(flow())
    assert [(s.status, s.pages_done) for s in states] == [("running", 1), ("failed", None)]
    assert states[-1].error is not None and states[-1].error.code == "corrupt_file"
    assert slept == [0.0, 0.2] and len(seen) == 3


def test_wait_gives_up_after_its_timeout() -> None:
    handler, _ = answers(*[httpx.Response(200, json=JOB)] * 50)
    now = [0.0]
    client = Client("http://ocr.test", "k", transport=httpx.MockTransport(handler),
                    poll_interval=1.0, sleep=lambda s: now.__setitem__(0, now[0] + s))
    client.core.clock = lambda: now[0]
    with client, pytest.raises(TimeoutError, match="still queued"):
        client.wait("j1", timeout=10)
    assert now[0] <= 10


def test_the_progress_bar_shows_pages_done_of_total_and_copes_without_them() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with progress_bar(console) as show:
        show(Job.model_validate(JOB))  # no progress fields: an indeterminate bar
        show(Job.model_validate({**JOB, "status": "running", "pages_done": 2,
                                 "pages_total": 5}))
        console.file.flush()
        assert "2/5" in screen.getvalue() and "running" in screen.getvalue()


def test_the_public_names_are_pinned() -> None:
    assert sorted(client_module.__all__) == [
        "ApiError", "AsyncClient", "AuditEntry", "AuditPage", "BadRequest", "BulkDeletion",
        "Client", "Conflict", "CustomerKey", "DeletionReceipt", "Document", "Engine",
        "Forbidden", "Gone", "Job", "JobCreated", "JobPage", "JobStatus", "Key", "KeyCreated",
        "Language", "NotFound",
        "PayloadTooLarge", "RateLimited", "RetentionPolicy", "Retry", "SeenIds",
        "Unauthorized", "Unavailable", "WebhookVerificationError", "progress_bar",
        "verify_webhook"]


def test_the_client_imports_nothing_of_the_server() -> None:
    """It runs where only httpx, pydantic and rich are installed: ocrvault.model is the one
    shape it shares with the server."""
    package = Path(client_module.__file__).parent
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for path in package.glob("*.py") for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    ours = {name for name in imported if name and name.startswith("ocrvault")}
    assert ours - {"ocrvault.model"} == {name for name in ours if
                                         name.startswith("ocrvault.client")}

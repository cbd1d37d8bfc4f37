"""Denial of service, tried against a real uvicorn server on loopback as an attacker would.

- slow sockets: hundreds of connections that send half a request head and wait;
- big bodies: an unauthenticated 1 GB body, declared or chunked, to a JSON and an upload route;
- floods: one tenant's parallel uploads and synchronous reads.

Each attack is bounded in count and time; each test shows that a normal client, or a
second tenant, is still served within a bound meanwhile.
"""

from __future__ import annotations

import contextlib
import select
import selectors
import socket
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from ocrvault.api.app import create_app
from ocrvault.api.server import fit_open_files, server_options
from ocrvault.runtime import Runtime
from tests.databases import TestDatabases
from tests.docgen import encode, text_page
from tests.engine_fakes import SlowEngine
from tests.servers import serving

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 5.0
OCR_SECONDS = 0.3  # the fake engine's time per page
PAGE = encode(text_page(["Invoice 42"], size=(400, 200), font_px=24), "PNG")
GIVE_UP_AFTER = 64 * 1024 * 1024  # sent without an answer: the server is reading it all


@pytest.fixture(scope="module")
def server(module_databases: TestDatabases,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Runtime]]:
    settings = module_databases.settings(
        tmp_path_factory.mktemp("dos") / "data", workers=2,
        reaper_interval_seconds=3600, header_timeout_seconds=HEADER_TIMEOUT,
        body_timeout_seconds=BODY_TIMEOUT, max_file_bytes=1_000_000,
        max_sync_file_bytes=1_000_000, max_inflight_upload_bytes=4_000_000,
        upload_wait_seconds=0.5, max_sync_reads_per_tenant=2,
    )
    fit_open_files(2000)  # the slow sockets' both ends live in this process
    runtime = Runtime.build(settings, engine=SlowEngine(OCR_SECONDS))
    with serving(create_app(runtime), **server_options(settings)) as port:
        warm_up = runtime.access.bootstrap_tenant("warm-up").secret
        for _ in range(2):  # starts the decode sandbox before anything is timed
            assert sync_read(port, warm_up).status_code == 200
        yield port, runtime


def sync_read(port: int, key: str) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{port}/v1/read:sync", content=PAGE, timeout=60,
                      headers={"Authorization": f"Bearer {key}"})


@pytest.fixture(scope="module")
def keys(server: tuple[int, Runtime]) -> tuple[str, str]:
    access = server[1].access
    return access.bootstrap_tenant("attacker").secret, access.bootstrap_tenant("bystander").secret


def url(server: tuple[int, Runtime], path: str) -> str:
    return f"http://127.0.0.1:{server[0]}{path}"


def answers_until_closed(sockets: list[socket.socket], deadline: float) -> dict[int, bytes]:
    """What each socket received until the server closed it, for those it closed by
    ``deadline``."""
    received = {sock.fileno(): b"" for sock in sockets}
    closed: dict[int, bytes] = {}
    with selectors.DefaultSelector() as selector:  # epoll: select() stops at fd 1024
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        while len(closed) < len(sockets) and time.monotonic() < deadline:
            for key, _ in selector.select(0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionError:
                    data = b""
                received[sock.fileno()] += data
                if not data:
                    closed[sock.fileno()] = received[sock.fileno()]
                    selector.unregister(sock)
    return closed


def test_slow_sockets_are_closed_at_the_header_timeout_and_others_served_meanwhile(
        server: tuple[int, Runtime]) -> None:
    slow: list[socket.socket] = []
    try:
        for number in range(500):
            sock = socket.create_connection(("127.0.0.1", server[0]), timeout=5)
            if number % 50:  # and every 50th connects and sends nothing at all
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: a")
            slow.append(sock)
        opened = time.monotonic()

        started = time.monotonic()
        healthy = httpx.get(url(server, "/healthz"), timeout=5)
        assert healthy.status_code == 200
        assert time.monotonic() - started < 2

        closed = answers_until_closed(slow, opened + HEADER_TIMEOUT + 10)
        assert len(closed) == len(slow)
        partial = [answer for fd, answer in closed.items() if answer]
        assert len(partial) == 490
        assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in partial)
        assert all(b'"code":"request_timeout"' in answer for answer in partial)
    finally:
        for sock in slow:
            sock.close()
    assert httpx.get(url(server, "/healthz"), timeout=5).status_code == 200


def test_a_head_over_100_kib_or_100_fields_is_refused_with_431(
        server: tuple[int, Runtime]) -> None:
    long_header = {"X-Long": "a" * 110_000}
    assert httpx.get(url(server, "/healthz"), headers=long_header).status_code == 431
    many = {f"X-Field-{number}": "1" for number in range(120)}
    refused = httpx.get(url(server, "/healthz"), headers=many)
    assert refused.status_code == 431
    assert refused.json()["code"] == "headers_too_large"


def test_a_header_line_that_never_ends_is_cut_off_after_a_bounded_read(
        server: tuple[int, Runtime]) -> None:
    sock = socket.create_connection(("127.0.0.1", server[0]), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Endless: ")
    sock.setblocking(False)
    answer, sent = b"", 0
    try:
        while sent < GIVE_UP_AFTER and not answer:
            readable, writable, _ = select.select([sock], [sock], [], 1)
            if readable:
                answer = sock.recv(65536)
            elif writable:
                sent += sock.send(b"a" * 65536)
    except ConnectionError:
        pass
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert sent < 16 * 1024 * 1024


def send_body_without_key(port: int, path: str, chunked: bool) -> tuple[bytes, int]:
    """POST a 1 GB body (generated as it goes) with no key; the answer and the bytes sent
    before the server answered and closed, or before GIVE_UP_AFTER."""
    total = 1 << 30
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % total
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 b"%s\r\n\r\n" % (path.encode(), framing))
    piece = bytes(65536)
    if chunked:
        piece = b"%x\r\n%s\r\n" % (len(piece), piece)
    sock.setblocking(False)
    answer, sent = b"", 0
    deadline = time.monotonic() + 20
    try:
        while sent < GIVE_UP_AFTER and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1)
            if readable:
                data = sock.recv(65536)
                answer += data
                if not data:
                    break
            elif writable:
                sent += sock.send(piece)
    except ConnectionError:
        pass
    finally:
        sock.close()
    return answer, sent


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
@pytest.mark.parametrize("path", [
    "/v1/keys", "/v1/read", "/v1/read:sync", "/v1/webhooks",
    # The vendors' front doors read their key from their own headers, before the body too.
    "/vision/v3.2/read/analyze", "/vision/v3.2/read/syncAnalyze",
    "/documentintelligence/documentModels/prebuilt-read:analyze?api-version=2024-11-30",
    "/processImage", "/v2/processImage"])
def test_an_unauthenticated_1_gb_body_is_refused_having_read_almost_none_of_it(
        server: tuple[int, Runtime], path: str, chunked: bool) -> None:
    process = psutil.Process()
    before = process.memory_info().rss

    answer, sent = send_body_without_key(server[0], path, chunked)

    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b"connection: close" in answer.lower()
    assert sent < 16 * 1024 * 1024  # what the socket buffers hold, not the body
    assert process.memory_info().rss - before < 64 * 1024 * 1024


def test_an_upload_that_stalls_is_cut_off_with_408(server: tuple[int, Runtime],
                                                    keys: tuple[str, str]) -> None:
    sock = socket.create_connection(("127.0.0.1", server[0]), timeout=BODY_TIMEOUT + 10)
    try:
        sock.sendall(b"POST /v1/read HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
                     + keys[0].encode() + b"\r\nContent-Length: 500000\r\n\r\n" + PAGE[:100])
        started = time.monotonic()
        answer = sock.recv(65536)
        waited = time.monotonic() - started
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"code":"request_timeout"' in answer
    assert BODY_TIMEOUT - 0.5 < waited < BODY_TIMEOUT + 5


def request(port: int, key: str, path: str, body: bytes, declared: int | None = None
            ) -> socket.socket:
    """A request sent on a raw socket, closed by the server once answered; the body may
    fall short of its ``declared`` length and wait there."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
                 % (path.encode(), key.encode(), declared or len(body), body))
    return sock


def status(answer: bytes) -> int:
    return int(answer[9:12]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_one_tenants_flood_of_uploads_and_sync_reads_leaves_another_tenant_served(
        server: tuple[int, Runtime], keys: tuple[str, str]) -> None:
    attacker, bystander = keys
    port = server[0]
    # Uploads of 900 kB that send 100 bytes and stall: the attacker may hold half of the
    # 4 MB budget, so two hold it (until cut off) and the others get 503 after 0.5 s.
    flooded = time.monotonic()
    uploads = [request(port, attacker, "/v1/read", PAGE[:100], 900_000) for _ in range(8)]
    # The bystander's upload meanwhile, as a baseline for the next flood.
    started = time.monotonic()
    assert sync_read(port, bystander).status_code == 200
    unloaded = time.monotonic() - started
    # Synchronous reads, 60 at once: two run, the rest are refused before being read
    # (in one line, they would keep the bystander waiting 58 x 0.3 s / 2 threads = 8.7 s).
    reads = [request(port, attacker, "/v1/read:sync", PAGE) for _ in range(60)]
    try:
        started = time.monotonic()
        served = sync_read(port, bystander)
        elapsed = time.monotonic() - started
        upload_answers = answers_until_closed(uploads, flooded + BODY_TIMEOUT + 10)
        read_answers = answers_until_closed(reads, time.monotonic() + 30)
    finally:
        for sock in uploads + reads:
            sock.close()

    assert served.status_code == 200, served.text
    assert elapsed < unloaded + 10 * OCR_SECONDS
    upload_statuses = sorted(status(answer) for answer in upload_answers.values())
    assert upload_statuses == [408] * 2 + [503] * 6
    for answer in upload_answers.values():
        if status(answer) == 503:
            assert b'"code":"server_busy"' in answer
            assert b"retry-after: 1\r\n" in answer.lower()
    read_statuses = [status(answer) for answer in read_answers.values()]
    assert len(read_statuses) == 60 and set(read_statuses) == {200, 429}
    assert read_statuses.count(429) >= 40  # two at a time: only those sent as one ended ran


def test_connections_past_the_cap_are_closed_at_once_and_the_cap_frees_when_they_go(
        databases: TestDatabases, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The connection cap (README: further connections are closed at once) holds, and is
    a cap, not a ban: once the idle connections go, a client is served again."""
    settings = databases.settings(tmp_path_factory.mktemp("cap") / "data", workers=1,
                                  reaper_interval_seconds=3600, max_connections=5,
                                  header_timeout_seconds=30)
    runtime = Runtime.build(settings, engine=SlowEngine(OCR_SECONDS))
    with serving(create_app(runtime), **server_options(settings)) as port:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(5)]
        try:
            # Accepted in the order they came: the sixth finds the cap full.
            extra = socket.create_connection(("127.0.0.1", port), timeout=5)
            with extra:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                # Closed unanswered (a reset, as it had sent a request); a wait would time
                # the recv out after 5 s, far before the 30 s header deadline.
                with contextlib.suppress(ConnectionResetError):
                    assert extra.recv(1024) == b""
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + 10
        while (status := httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code
               ) != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status == 200

"""A key's rate holds across API nodes: two real API processes (``serve --role api``) on
one database, with OCRVAULT_RATE_LIMIT_BACKEND=redis, let a key through at its rate in
total, not at its rate on each node. Redis db 7; skipped without Redis (failed under
CI=true)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from typer.testing import CliRunner

from ocrvault.access.keys import KEY_PATTERN
from ocrvault.access.ratelimit import RedisTokenBuckets
from ocrvault.cli import app
from ocrvault.errors import ErrorCode, Unavailable
from tests.databases import TestDatabases
from tests.e2e.live import LiveServer
from tests.services import require_service

REDIS_URL = "redis://127.0.0.1:6379/7"
RATE = 12  # requests a minute: refills one token per 5 s, none to speak of during the test


QUEUE_NAME = f"ocrvault-test-{secrets.token_hex(6)}"


@pytest.fixture
def redis_url() -> Iterator[str]:
    require_service("redis", REDIS_URL)
    yield REDIS_URL
    store = redis.Redis.from_url(REDIS_URL)
    for pattern in ("ocrvault:ratelimit:*", f"*{QUEUE_NAME}*"):
        for key in store.scan_iter(match=pattern):
            store.delete(key)
    store.close()


@pytest.fixture
def two_api_nodes(databases: TestDatabases, tmp_path: Path,
                  redis_url: str) -> Iterator[tuple[LiveServer, LiveServer, str]]:
    data_dir = tmp_path / "data"
    env = {**databases.env(data_dir), "OCRVAULT_QUEUE": "celery",
           "OCRVAULT_BROKER_URL": redis_url,
           "OCRVAULT_QUEUE_NAME": QUEUE_NAME,
           "OCRVAULT_RATE_LIMIT_BACKEND": "redis", "OCRVAULT_RATE_LIMIT_REDIS_URL": redis_url,
           "OCRVAULT_WORKERS": "1", "OCRVAULT_DOCS_ENABLED": "false",
           "OCRVAULT_LOG_FORMAT": "json"}
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
    made = runner.invoke(app, ["admin", "bootstrap", "--print", "--create"], env=env)
    assert made.exit_code == 0, made.output
    match = KEY_PATTERN.search(made.output)
    assert match is not None
    nodes = [LiveServer(data_dir, "--role", "api", env=env) for _ in range(2)]
    try:
        for node in nodes:
            node.wait_ready()
        yield nodes[0], nodes[1], match[0]
    finally:
        for node in nodes:
            node.close()


def test_a_key_is_held_to_its_rate_in_total_across_two_api_nodes(
        two_api_nodes: tuple[LiveServer, LiveServer, str]) -> None:
    first, second, admin = two_api_nodes
    made = httpx.post(f"{first.url}/v1/keys", headers={"Authorization": f"Bearer {admin}"},
                      json={"name": "limited", "role": "developer",
                            "rate_limit_per_minute": RATE}, timeout=30)
    assert made.status_code == 201, made.text
    limited = {"Authorization": f"Bearer {made.json()['secret']}"}

    allowed = {first.url: 0, second.url: 0}
    for _ in range(2 * RATE):  # alternating: either node alone would allow RATE of these
        for node in (first, second):
            answer = httpx.get(f"{node.url}/v1/jobs", headers=limited, timeout=30)
            assert answer.status_code in (200, 429), answer.text
            allowed[node.url] += answer.status_code == 200

    # A token may refill while the requests run (one each 5 s): RATE, or just over it.
    assert RATE <= sum(allowed.values()) <= RATE + 2, allowed
    assert all(allowed.values()), allowed  # both nodes served the key
    # Each node wrote its request lines as JSON, by route template, 429s included.
    lines = [json.loads(line) for line in first.output.splitlines() if line.startswith("{")]
    assert any(line.get("route") == "/v1/jobs" and line.get("status") == 429 for line in lines)


def test_a_redis_bucket_allows_its_capacity_then_says_how_long_to_wait(redis_url: str) -> None:
    limiter = RedisTokenBuckets(redis_url)
    bucket = f"key:{secrets.token_hex(6)}"
    assert [limiter.acquire(bucket, RATE) for _ in range(RATE)] == [0.0] * RATE
    wait = limiter.acquire(bucket, RATE)
    assert 0 < wait <= 60 / RATE  # one token's refill at RATE a minute, at most
    assert limiter.acquire(f"key:{secrets.token_hex(6)}", RATE) == 0.0  # buckets are per key
    limiter.close()


def test_a_shared_limiter_that_cannot_reach_redis_refuses_instead_of_allowing() -> None:
    limiter = RedisTokenBuckets("redis://127.0.0.1:1/7", timeout_seconds=0.5)
    with pytest.raises(Unavailable) as refused:
        limiter.acquire("key:anything", 10)
    assert refused.value.code is ErrorCode.SERVER_BUSY

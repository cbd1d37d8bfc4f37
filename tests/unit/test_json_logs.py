"""OCRVAULT_LOG_FORMAT=json: one JSON object per line, with the request's id, route
template, status and duration, the tenant hashed or omitted, and keys redacted as in
the text format."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ocrvault.config import Settings
from ocrvault.logs import REDACTED, JsonFormatter, install_key_redaction
from tests.conftest import auth, runtime_of


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """What the root logger writes through the JSON formatter, parsed line by line."""
    install_key_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize("tenant_mode", ["hash", "omit"])
def test_each_request_is_one_json_line_with_its_id_route_status_and_tenant(
        make_client: Callable[..., TestClient], settings: Settings,
        json_lines: Callable[[], list[dict[str, Any]]], tenant_mode: str) -> None:
    client = make_client(settings.model_copy(update={"log_format": "json",
                                                     "log_tenant": tenant_mode}))
    issued = runtime_of(client).access.bootstrap_tenant("acme")
    response = client.get("/v1/jobs/0123456789abcdef", headers={
        **auth(issued.secret), "X-Request-Id": "req-42"})
    assert response.status_code == 404

    access = [line for line in json_lines() if line["logger"] == "ocrvault.access"]

    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "req-42"
    assert line["route"] == "/v1/jobs/{job_id}" and line["method"] == "GET"
    assert line["status"] == 404 and line["duration_ms"] >= 0
    assert "0123456789abcdef" not in json.dumps(line)
    if tenant_mode == "hash":
        assert line["tenant"] == hashlib.sha256(issued.tenant_id.encode()).hexdigest()[:16]
    else:
        assert "tenant" not in line
    assert issued.tenant_id not in json.dumps(access)


def test_a_json_line_is_redacted_like_a_text_line(
        make_client: Callable[..., TestClient], settings: Settings,
        json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    client = make_client(settings)
    secret = runtime_of(client).access.bootstrap_tenant("acme").secret
    log = logging.getLogger("ocrvault.test")
    log.warning("a key in a message: %s", secret, extra={"unlisted": secret})
    try:
        raise ValueError(f"a key in an error: {secret}")
    except ValueError:
        log.exception("failed")

    written = [line for line in json_lines() if line["logger"] == "ocrvault.test"]

    assert secret not in json.dumps(json_lines())
    assert REDACTED in written[0]["message"] and "unlisted" not in written[0]
    assert REDACTED in written[1]["exc"]


def test_the_text_format_writes_no_access_line_of_its_own(
        make_client: Callable[..., TestClient], settings: Settings,
        json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    """Text logs keep uvicorn's access log: a second line per request would double it."""
    client = make_client(settings)
    client.get("/healthz")
    assert [line for line in json_lines() if line["logger"] == "ocrvault.access"] == []

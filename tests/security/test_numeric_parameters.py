"""Every numeric parameter of every route is bounded: a value too large, negative, not a
number or 5,000 digits long is ``400 invalid_parameter``, never a 500.

Python's ``int()`` refuses strings over 4,300 digits with a ValueError, and SQLite refuses
integers over 64 bits with an OverflowError: both once answered 500 with a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ocrvault.config import Settings
from tests.conftest import assert_problem, auth, runtime_of
from tests.docgen import encode, text_page
from tests.engine_fakes import FixedEngine

HUGE = "9" * 5000  # over Python's 4,300-digit limit for int()

# Each value goes raw into the JSON text, so that a 5,000-digit number reaches the parser.
JSON_NUMBERS = [HUGE, "-" + HUGE, "1" + "0" * 30, "-1", '"abc"', "true", "1.5"]
TEXT_NUMBERS = [HUGE, "-" + HUGE, "-1", "abc", "1.5", "1e3", "0x10", "\u0663"]
DATES = [HUGE, "-1", "abc", "99999-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00",
         "0001-01-01T00:00:00+14:00", "2025-13-01T00:00:00Z", "2025-01-01T00:00:00"]

QUERY_CASES: list[tuple[str, str, str, str]] = [
    *(("POST", route, "pages", value) for route in ("/v1/read", "/v1/read:sync")
      for value in [HUGE, "1-" + HUGE, "0", "-1", "abc", "100001", "1-100001", "1.5",
                    ",".join(["1"] * 101), "1" * 1001]),
    *(("POST", "/v1/read", "retention", value)
      for value in [HUGE, "9" * 32, "315360001", "-1", "abc", "1.5", "P99999999999D",
                    "P99999999999Y", "PT99999999999999999999999999999S", "\u0663"]),
    *(("GET", "/v1/audit", "limit", value) for value in [*TEXT_NUMBERS, "0", "1001"]),
    *(("GET", "/v1/audit", name, value) for name in ("since", "until") for value in DATES),
    ("GET", "/v1/audit", "cursor", HUGE),
    *(("GET", "/v1/jobs", "limit", value) for value in [*TEXT_NUMBERS, "0", "201"]),
    *(("GET", "/v1/jobs", name, value) for name in ("since", "until") for value in DATES),
    ("GET", "/v1/jobs", "cursor", HUGE),
    *(("DELETE", "/v1/jobs", "before", value) for value in DATES),
]

NOT_NULLABLE: list[tuple[str, str, str]] = [
    ("POST", "/v1/keys/{key_id}/rotate", "grace_seconds"),
    *((method, path, kind)
      for method, path in (("PUT", "/v1/retention"), ("PUT", "/v1/keys/{key_id}/retention"))
      for kind in ("input", "result", "outputs", "job_metadata", "failed_inputs")),
]
BODY_FIELDS: list[tuple[str, str, str]] = [
    *(("POST", "/v1/keys", name)
      for name in ("rate_limit_per_minute", "max_concurrent_jobs", "max_pages_per_day")),
    *NOT_NULLABLE,
]
BASE_BODIES = {
    "/v1/keys": {"name": "bounded", "role": "developer"},
    "/v1/keys/{key_id}/rotate": {},
    "/v1/retention": {"input": 0, "result": 60, "outputs": 60, "job_metadata": 60,
                      "failed_inputs": 0},
}
BASE_BODIES["/v1/keys/{key_id}/retention"] = BASE_BODIES["/v1/retention"]


@pytest.fixture
def fast_client(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, engine=FixedEngine())


def _admin(client: TestClient) -> tuple[str, str]:
    issued = runtime_of(client).access.bootstrap_tenant("acme")
    return issued.secret, issued.key.id


def _json_with(body: dict[str, Any], name: str, raw: str) -> str:
    """``body`` as JSON text with ``name`` set to the raw JSON ``raw``."""
    text = json.dumps({**body, name: "__VALUE__"})
    return text.replace('"__VALUE__"', raw)


@pytest.mark.parametrize(("method", "path", "name", "value"), QUERY_CASES,
                         ids=lambda v: v[:24] if isinstance(v, str) else v)
def test_a_bad_numeric_query_parameter_is_400_invalid_parameter(
        fast_client: TestClient, method: str, path: str, name: str, value: str) -> None:
    secret, _ = _admin(fast_client)
    response = fast_client.request(method, path, params={name: value}, headers=auth(secret),
                                   content=encode(text_page("Bounded"), "PNG"))
    assert_problem(response, 400, "invalid_parameter")


@pytest.mark.parametrize(
    ("method", "path", "name", "raw"),
    [*((*field, raw) for field in BODY_FIELDS for raw in JSON_NUMBERS),
     *((*field, "null") for field in NOT_NULLABLE)],  # a key's limits take null: no limit
    ids=lambda v: v[:24])
def test_a_bad_numeric_json_field_is_400_invalid_parameter(
        fast_client: TestClient, method: str, path: str, name: str, raw: str) -> None:
    secret, key_id = _admin(fast_client)
    response = fast_client.request(
        method, path.format(key_id=key_id), headers={**auth(secret),
                                                     "Content-Type": "application/json"},
        content=_json_with(BASE_BODIES[path], name, raw))
    assert_problem(response, 400, "invalid_parameter")


@pytest.mark.parametrize("value", [HUGE, '"99999-01-01T00:00:00Z"', '"9999-12-31T23:59:59-14:00"',
                                   '"0001-01-01T00:00:00+14:00"', "-1", "true"],
                         ids=lambda v: v[:24])
def test_a_bad_key_expiry_is_400_invalid_parameter(fast_client: TestClient, value: str) -> None:
    secret, _ = _admin(fast_client)
    response = fast_client.post("/v1/keys", headers={**auth(secret),
                                                     "Content-Type": "application/json"},
                                content=_json_with(BASE_BODIES["/v1/keys"], "expires_at", value))
    assert_problem(response, 400, "invalid_parameter")


def test_the_largest_allowed_values_are_accepted(fast_client: TestClient) -> None:
    """The bounds refuse only what is out of range: the limits themselves pass."""
    secret, _ = _admin(fast_client)
    response = fast_client.post("/v1/keys", headers=auth(secret), json={
        "name": "roomy", "role": "developer", "rate_limit_per_minute": 1_000_000,
        "max_concurrent_jobs": 10_000, "max_pages_per_day": 100_000_000})
    assert response.status_code == 201, response.text
    response = fast_client.post("/v1/read:sync", params={"pages": "1"}, headers=auth(secret),
                                content=encode(text_page("Bounded"), "PNG"))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("route", ["/v1/read", "/v1/read:sync"])
def test_a_5000_digit_content_length_is_too_large_not_a_500(
        fast_client: TestClient, route: str) -> None:
    secret, _ = _admin(fast_client)

    def body() -> Iterator[bytes]:  # a stream: the client keeps the header as given
        yield b"x" * 10

    response = fast_client.post(route, content=body(),
                                headers={**auth(secret), "Content-Length": HUGE})
    assert_problem(response, 413, "file_too_large")


@pytest.mark.parametrize("path", ["/v1/jobs/{id}", "/v1/jobs/{id}/outputs/text",
                                  "/v1/audit/{id}", "/v1/keys/{id}/retention"])
def test_a_5000_digit_id_in_the_path_is_not_found_not_a_500(
        fast_client: TestClient, path: str) -> None:
    secret, _ = _admin(fast_client)
    response = fast_client.get(path.format(id=HUGE), headers=auth(secret))
    assert response.status_code == 404, response.text

"""Every error the v1 API promises, with its status, code and problem+json body."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import cast

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ocrvault.access.keys import generate_key
from ocrvault.api.app import api_routes, build_ahead
from ocrvault.api.routes import read
from ocrvault.environments import Environment
from ocrvault.errors import ErrorCode
from tests.conftest import assert_problem, auth, issue, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, pdf_of, text_page


def png_header_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims the size; its pixel data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + b"\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 400, "empty_file"),
        (b"PK\x03\x04" + b"\x00" * 200, 415, "unsupported_media_type"),
        (b"<html><body>invoice</body></html>", 415, "unsupported_media_type"),
        (png_header_declaring(100_000, 100_000), 422, "image_too_large"),
    ],
    ids=["empty", "zip", "html", "huge-png"],
)
def test_bad_files_are_refused_with_their_code(
    client: TestClient, admin_key: str, body: bytes, status: int, code: str
) -> None:
    for route in ("/v1/read", "/v1/read:sync"):
        response = client.post(route, content=body, headers=auth(admin_key))
        assert_problem(response, status, code)


def test_a_file_broken_past_its_header_fails_its_job_or_sync_read_as_corrupt(
    client: TestClient, admin_key: str
) -> None:
    """Headers are checked at submission; the rest of the bytes only when decoded."""
    truncated = encode(text_page(["x"]), "PNG")[:200]
    assert_problem(client.post("/v1/read:sync", content=truncated, headers=auth(admin_key)),
                   422, "corrupt_file")
    response = client.post("/v1/read", content=truncated, headers=auth(admin_key))
    assert response.status_code == 202
    job = wait_for_job(client, response.json()["id"], admin_key)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "corrupt_file" and job["error"]["detail"]
    assert job["result"] is None


def test_a_file_named_and_typed_as_png_is_judged_by_its_bytes(
    client: TestClient, admin_key: str
) -> None:
    response = client.post("/v1/read", headers=auth(admin_key),
                           files={"file": ("photo.png", b"<svg xmlns='x'/>", "image/png")})
    assert_problem(response, 415, "unsupported_media_type")


def test_file_over_the_byte_limit_is_413(
    databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    small = make_client(databases.settings(tmp_path / "d", workers=1, max_file_bytes=5000))
    key = issue(small, "acme")
    body = encode(text_page(["x" * 40]), "BMP")
    assert_problem(small.post("/v1/read", content=body, headers=auth(key)), 413, "file_too_large")
    multipart = small.post("/v1/read", headers=auth(key), files={"file": ("a.bmp", body)})
    assert_problem(multipart, 413, "file_too_large")


def test_too_many_pages_is_422(databases: TestDatabases,
                               make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    small = make_client(databases.settings(tmp_path / "d", workers=1, max_pages=2))
    key = issue(small, "acme")
    pdf = pdf_of([text_page([str(n)], size=(300, 200)) for n in range(3)])
    assert_problem(small.post("/v1/read", content=pdf, headers=auth(key)), 422, "too_many_pages")


@pytest.mark.parametrize(
    "params",
    [{"languages": "xxx"}, {"languages": "eng+../../etc"}, {"pages": "abc"}, {"pages": "0"},
     {"outputs": "docx"}],
)
def test_bad_parameters_are_400(client: TestClient, admin_key: str, params: dict[str, str]) -> None:
    body = encode(text_page(["hello"]), "PNG")
    response = client.post("/v1/read", content=body, params=params, headers=auth(admin_key))
    assert_problem(response, 400, "invalid_parameter")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"Bearer {generate_key(Environment.LIVE)}"},  # well-formed, unknown
    ],
    ids=["none", "empty", "basic", "malformed", "unknown"],
)
def test_requests_without_a_valid_key_are_401_with_bearer_challenge(
    client: TestClient, headers: dict[str, str]
) -> None:
    for method, path in (("POST", "/v1/read"), ("GET", "/v1/jobs/x"), ("DELETE", "/v1/jobs/x"),
                         ("POST", "/v1/read:sync"), ("GET", "/v1/jobs/x/outputs/text")):
        response = client.request(method, path, headers=headers, content=b"x")
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_key_with_a_mistyped_character_is_refused(client: TestClient, admin_key: str) -> None:
    flipped = admin_key[:-8] + ("A" if admin_key[-8] != "A" else "B") + admin_key[-7:]
    response = client.get("/v1/jobs/x", headers=auth(flipped))
    assert_problem(response, 401, "unauthorized")


def test_unknown_route_and_method_are_problems(client: TestClient, admin_key: str) -> None:
    assert_problem(client.get("/v1/nothing", headers=auth(admin_key)), 404, "not_found")
    assert_problem(client.put("/v1/read", headers=auth(admin_key)), 405, "method_not_allowed")


def test_openapi_documents_routes_and_every_error_code(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/v1/read", "/v1/read:sync", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/outputs/{fmt}",
            "/healthz", "/readyz"} <= set(schema["paths"])
    for code in ErrorCode:
        assert code.value in schema["info"]["description"]


def test_build_ahead_leaves_no_endpoint_for_its_first_request_to_locate(
        client: TestClient) -> None:
    """FastAPI reads an endpoint's source file on its first request (for error messages);
    build_ahead does it for every endpoint, those of included routers too, before serving."""
    app = cast(FastAPI, client.app)
    endpoints = {route.dependant.call for route in api_routes(app.routes)}
    assert {read.submit_read, read.read_sync} <= endpoints
    build_ahead(app)
    located = fastapi.routing._endpoint_context_cache  # FastAPI's cache, by id()
    assert all(located.get(id(endpoint)) for endpoint in endpoints)


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "blob_store": "ok", "key_service": "ok",
                                      "engine": "ok"}

"""What a browser or a crafted request meets outside the API proper: no redirect built
from the Host header, the docs page served from the package under a strict CSP."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import assert_problem, auth
from tests.databases import TestDatabases
from tests.engine_fakes import FixedEngine


def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_host_header(
    client: TestClient, admin_key: str,
) -> None:
    response = client.get("/v1/keys/", headers={**auth(admin_key), "Host": "evil.example"},
                          follow_redirects=False)
    assert_problem(response, 404, "not_found")
    assert "location" not in response.headers


def _inline_script_hashes(html: str) -> set[str]:
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    return {"'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
            for s in scripts}


def _directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";"))}


def test_docs_load_nothing_from_another_host_under_a_strict_policy(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.text
    assert "SwaggerUIBundle" in html
    assert not re.findall(r"(?:https?:)?//[^\s\"'<>]+", html)  # every URL is relative
    policy = _directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]
    scripts = set(policy["script-src"])
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    hashes = _inline_script_hashes(html)
    assert hashes and scripts == {"'self'"} | hashes  # exactly the page's own inline script
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/docs/static/"), url


@pytest.mark.parametrize(("name", "media_type"), [
    ("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"),
    ("favicon.png", "image/png"),
])
def test_docs_assets_are_served_from_the_package(
    client: TestClient, name: str, media_type: str,
) -> None:
    response = client.get(f"/docs/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert len(response.content) > 500


@pytest.mark.parametrize("name", ["redoc.standalone.js", "../__init__.py", "..%2Fcore.py",
                                  "swagger-ui-bundle.js.map"])
def test_only_the_pages_own_assets_are_served(client: TestClient, name: str) -> None:
    assert client.get(f"/docs/static/{name}").status_code == 404


def test_every_other_response_forbids_a_browser_everything(
    client: TestClient, admin_key: str,
) -> None:
    for response in (client.get("/healthz"), client.get("/openapi.json"),
                     client.get("/v1/jobs/none", headers=auth(admin_key)),
                     client.get("/docs/")):
        assert response.headers["content-security-policy"] == (
            "default-src 'none'; frame-ancestors 'none'")


def test_docs_can_be_turned_off_and_openapi_stays(
    databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path,
) -> None:
    client = make_client(databases.settings(tmp_path / "data", workers=0, docs_enabled=False),
                         engine=FixedEngine())
    assert_problem(client.get("/docs"), 404, "not_found")
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_the_served_swagger_ui_can_read_our_openapi_version(client: TestClient) -> None:
    """Swagger UI 4 shows 'Unable to render this definition' for OpenAPI 3.1."""
    bundle = client.get("/docs/static/swagger-ui-bundle.js").text
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)', bundle)
    assert version is not None
    if client.get("/openapi.json").json()["openapi"].startswith("3.1"):
        assert int(version[1]) >= 5

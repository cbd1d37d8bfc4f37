"""What a browser or a crafted request meets outside the API proper: no redirect built
from the Host header, the docs page served from the package under a strict CSP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import assert_problem, auth


def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_host_header(
    client: TestClient, admin_key: str,
) -> None:
    response = client.get("/v1/keys/", headers={**auth(admin_key), "Host": "evil.example"},
                          follow_redirects=False)
    assert_problem(response, 404, "not_found")
    assert "location" not in response.headers

"""The vendor doors check a key exactly as /v1 does: scope, IP allow-list, rate limit and
revocation apply to ``Ocp-Apim-Subscription-Key`` and to HTTP Basic alike, and refusals
come back in each vendor's error shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.compat.conftest import PNG, Live

AZURE = "/vision/v3.2/read/analyze"
DI = "/documentintelligence/documentModels/prebuilt-read:analyze"


def make_key(live: Live, **spec: Any) -> str:
    answer = httpx.post(f"{live.url}/v1/keys", json={"name": "restricted", **spec},
                        headers={"Authorization": f"Bearer {live.key}"})
    assert answer.status_code == 201, answer.text
    secret: str = answer.json()["secret"]
    return secret


def azure(live: Live, key: str) -> httpx.Response:
    return httpx.post(live.url + AZURE, content=PNG,
                      headers={"Ocp-Apim-Subscription-Key": key,
                               "Content-Type": "application/octet-stream"})


def di(live: Live, key: str) -> httpx.Response:
    return httpx.post(live.url + DI, content=PNG, params={"api-version": "2024-11-30"},
                      headers={"Ocp-Apim-Subscription-Key": key,
                               "Content-Type": "application/octet-stream"})


def abbyy(live: Live, key: str) -> httpx.Response:
    return httpx.post(f"{live.url}/processImage", content=PNG, auth=("app", key),
                      params={"exportFormat": "txt"})


DOORS = [azure, di, abbyy]


@pytest.mark.parametrize("door", DOORS, ids=["azure-read", "document-intelligence", "abbyy"])
def test_a_key_without_read_submit_is_refused(live: Live, door: Any) -> None:
    answer = door(live, make_key(live, role="reviewer"))
    assert answer.status_code == 403
    assert "read:submit" in answer.text


@pytest.mark.parametrize("door", DOORS, ids=["azure-read", "document-intelligence", "abbyy"])
def test_a_key_from_another_address_is_refused(live: Live, door: Any) -> None:
    answer = door(live, make_key(live, role="developer", allowed_ips=["203.0.113.0/24"]))
    assert answer.status_code == 403


@pytest.mark.parametrize("door", DOORS, ids=["azure-read", "document-intelligence", "abbyy"])
def test_a_revoked_key_is_refused(live: Live, door: Any) -> None:
    created = httpx.post(f"{live.url}/v1/keys", json={"name": "gone", "role": "developer"},
                         headers={"Authorization": f"Bearer {live.key}"}).json()
    httpx.delete(f"{live.url}/v1/keys/{created['id']}",
                 headers={"Authorization": f"Bearer {live.key}"}).raise_for_status()
    assert door(live, created["secret"]).status_code == 401


def test_the_rate_limit_applies_with_azures_retry_after(live: Live) -> None:
    key = make_key(live, role="developer", rate_limit_per_minute=1)
    assert httpx.get(f"{live.url}/vision/v3.2/read/analyzeResults/x",
                     headers={"Ocp-Apim-Subscription-Key": key}).status_code == 404
    limited = httpx.get(f"{live.url}/vision/v3.2/read/analyzeResults/x",
                        headers={"Ocp-Apim-Subscription-Key": key})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.json()["code"] == "TooManyRequests"


def test_a_bearer_token_is_not_a_vendor_credential(live: Live) -> None:
    """Each door takes the key where its vendor's client sends it, and only there."""
    answer = httpx.post(live.url + AZURE, content=PNG,
                        headers={"Authorization": f"Bearer {live.key}"})
    assert answer.status_code == 401 and answer.json()["code"] == "Unauthorized"


def test_the_vendor_doors_stay_out_of_ocrvaults_openapi(live: Live) -> None:
    """Their contract is the vendor's; /openapi.json (and the schema fuzzing of it) is /v1's."""
    paths = httpx.get(f"{live.url}/openapi.json").json()["paths"]
    assert paths and all(path.startswith(("/v1", "/healthz", "/readyz", "/metrics", "/docs"))
                         for path in paths), sorted(paths)

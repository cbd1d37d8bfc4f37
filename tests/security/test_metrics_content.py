"""The metrics an operator scrapes say how much and how fast, never whose or what: after a
canary document has gone through the API, the scrape holds no tenant name or id, key
id or secret, job id, file name, document text or path a client typed."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from ocrvault.config import Settings
from ocrvault.telemetry import metrics
from tests.conftest import auth, runtime_of, wait_for_job
from tests.docgen import canary as make_canary
from tests.security.test_at_rest import canary_png
from tests.servers import free_port


@pytest.fixture
def scrape() -> Iterator[Callable[[], str]]:
    """The real metrics port, as Prometheus scrapes it."""
    port = free_port()
    stop = metrics.serve(port)
    yield lambda: httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    stop()


def test_a_scrape_after_a_canary_document_holds_no_name_id_or_text(
        make_client: Callable[..., TestClient], settings: Settings,
        scrape: Callable[[], str]) -> None:
    client = make_client(settings)
    # The canary is English words: one may be a word of the metrics' own names and help
    # texts ("engine"), which is no leak. Only words absent before the document count.
    vocabulary = scrape()
    tenant = f"tenant-{secrets.token_hex(6)}"
    issued = runtime_of(client).access.bootstrap_tenant(tenant)
    canary = make_canary()
    file_name = f"file-{secrets.token_hex(6)}.png"
    submitted = client.post("/v1/read", params={"outputs": "text"}, headers=auth(issued.secret),
                            files={"file": (file_name, canary_png(canary), "image/png")})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    assert wait_for_job(client, job_id, issued.secret)["status"] == "succeeded"
    assert canary.split()[1] in client.get(f"/v1/jobs/{job_id}/outputs/text",
                                           headers=auth(issued.secret)).text
    typed_path = f"/v1/nothing-{secrets.token_hex(6)}"
    assert client.get(typed_path, headers=auth(issued.secret)).status_code == 404
    wrong_key = issued.secret[:-4] + "zzzz"
    assert client.get("/v1/jobs", headers=auth(wrong_key)).status_code == 401

    body = scrape()

    forbidden = {"tenant name": tenant, "tenant id": issued.tenant_id, "key id": issued.key_id,
                 "secret": issued.secret, "wrong key": wrong_key, "job id": job_id,
                 "file name": file_name, "typed path": typed_path,
                 **{f"canary word {w}": w for w in canary.split()[1:] if w not in vocabulary}}
    assert [what for what, value in forbidden.items() if value in body] == []
    # ...and the figures are there, under route templates and engine names.
    assert 'route="/v1/jobs/{job_id}"' in body
    assert 'route="unmatched",status="404"' in body
    assert 'ocrvault_pages_total{engine="tesseract"}' in body
    assert 'ocrvault_refusals_total{code="unauthorized"}' in body
    assert 'ocrvault_jobs_finished_total{state="succeeded"}' in body



def test_a_body_refused_over_its_limit_counts_under_its_route_template(
        make_client: Callable[..., TestClient], settings: Settings) -> None:
    """The body limit is applied as the route reads the body, so a 413 is counted under
    the route's template (only a request refused before routing is ``unmatched``)."""
    client = make_client(settings)
    key = runtime_of(client).access.bootstrap_tenant("acme").secret
    labels = {"method": "POST", "route": "/v1/keys", "status": "413"}
    before = REGISTRY.get_sample_value("ocrvault_http_requests_total", labels) or 0.0

    answer = client.post("/v1/keys", headers={**auth(key), "Content-Type": "application/json"},
                         content=b"{" + b" " * (settings.max_json_body_bytes + 1) + b"}")

    assert answer.status_code == 413, answer.text
    assert REGISTRY.get_sample_value("ocrvault_http_requests_total", labels) == before + 1

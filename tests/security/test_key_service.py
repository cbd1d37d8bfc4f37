"""Losing the master-key provider (HSM unplugged, KMS unreachable) fails what needs a key
with 503 key_service_unavailable and Retry-After: no crash, no weaker key, /readyz says so."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient

from ocrvault.config import Settings
from ocrvault.store.repository import JobRepository
from tests.conftest import assert_problem, auth, issue, runtime_of
from tests.docgen import encode, text_page
from tests.s3server import REGION, moto_server
from tests.softhsm import delete_token, new_token

BODY = encode(text_page(["keys elsewhere"], size=(600, 200)), "PNG")


@pytest.fixture(params=["pkcs11", "aws-kms"])
def lost_provider(request: pytest.FixtureRequest, tmp_path: Path,
                  aws_credentials: None) -> Iterator[tuple[Settings, Callable[[], None]]]:
    """Settings on a remote provider (no tenant key cache: every use asks it), and how to
    lose it."""
    base = {"data_dir": tmp_path / "data", "workers": 0, "tenant_key_cache_seconds": 0,
            "reaper_interval_seconds": 3600}
    if request.param == "pkcs11":
        token = new_token()
        yield (Settings(**base, key_provider="pkcs11", pkcs11_library=token.library,
                        pkcs11_token_label=token.label, pkcs11_pin=token.pin),
               lambda: delete_token(token))
        return
    with ExitStack() as stack:
        endpoint = stack.enter_context(moto_server())
        kms = boto3.session.Session().client("kms", endpoint_url=endpoint, region_name=REGION)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        yield (Settings(**base, key_provider="aws-kms", kms_key_id=key_id,
                        kms_endpoint_url=endpoint, kms_region=REGION, kms_max_attempts=1,
                        kms_connect_timeout_seconds=1, kms_read_timeout_seconds=2),
               stack.close)


def test_without_its_key_service_the_api_answers_503_and_stores_nothing(
        make_client: Callable[..., TestClient],
        lost_provider: tuple[Settings, Callable[[], None]]) -> None:
    settings, lose = lost_provider
    client = make_client(settings)
    key = issue(client, "acme")
    job_id = client.post("/v1/read", content=BODY, headers=auth(key)).json()["id"]
    assert client.get("/readyz").json()["checks"]["key_service"] == "ok"
    store = settings.resolved_key_store_dir
    keys_before = sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file())

    lose()

    refused = client.post("/v1/read", content=BODY, headers=auth(key))
    assert_problem(refused, 503, "key_service_unavailable")
    assert int(refused.headers["retry-after"]) > 0
    other = issue(client, "globex")  # a tenant with no key yet: none is made elsewhere
    assert_problem(client.post("/v1/read", content=BODY, headers=auth(other)), 503,
                   "key_service_unavailable")
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["key_service"] == "failing: KeyServiceUnavailable"
    assert sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file()
                  ) == keys_before
    with runtime_of(client).db.transaction() as session:
        listed = JobRepository(session).by_id(job_id)
    assert listed is not None  # the earlier job is kept, untouched, for when the key is back

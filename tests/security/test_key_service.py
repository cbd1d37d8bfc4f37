"""Losing the master-key provider (HSM unplugged, KMS unreachable) fails what needs a key
with 503 key_service_unavailable and Retry-After: no crash, no weaker key, /readyz says so.
A worker that meets it hands its job back for later instead of failing it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ocrvault.cli import app as cli_app
from ocrvault.config import Settings
from ocrvault.crypto.master import RETRY_AFTER_SECONDS
from ocrvault.jobs.worker import MAX_ATTEMPTS
from ocrvault.store.repository import JobRepository
from tests.clocks import FakeClock
from tests.conftest import assert_problem, auth, issue, runtime_of, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, text_page
from tests.engine_fakes import FixedEngine
from tests.jobrows import job_row
from tests.s3server import REGION, moto_server, unresponsive
from tests.softhsm import delete_token, new_token, unplugged

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


@pytest.fixture(params=["pkcs11", "aws-kms"])
def outage(request: pytest.FixtureRequest, aws_credentials: None
           ) -> Iterator[tuple[dict[str, object], Callable[[], AbstractContextManager[None]]]]:
    """Settings of a remote provider, and an outage of it: unavailable inside the block,
    back with its keys after."""
    if request.param == "pkcs11":
        token = new_token()
        yield ({"key_provider": "pkcs11", "pkcs11_library": token.library,
                "pkcs11_token_label": token.label, "pkcs11_pin": token.pin},
               lambda: unplugged(token))
        return
    with moto_server() as endpoint:
        kms = boto3.session.Session().client("kms", endpoint_url=endpoint, region_name=REGION)
        yield ({"key_provider": "aws-kms", "kms_key_id": kms.create_key()["KeyMetadata"]["KeyId"],
                "kms_endpoint_url": endpoint, "kms_region": REGION, "kms_max_attempts": 1,
                "kms_connect_timeout_seconds": 1, "kms_read_timeout_seconds": 1},
               lambda: unresponsive(endpoint))


def test_a_worker_without_its_key_service_requeues_the_job_uncounted_until_it_is_back(
        make_client: Callable[..., TestClient], tmp_path: Path,
        outage: tuple[dict[str, object], Callable[[], AbstractContextManager[None]]],
        caplog: pytest.LogCaptureFixture) -> None:
    provider, down = outage
    clock = FakeClock()
    # No worker threads: the test runs the worker's turns itself, and moves the clock.
    settings = Settings.model_validate({
        "data_dir": tmp_path / "data", "workers": 0, "tenant_key_cache_seconds": 0,
        "reaper_interval_seconds": 3600, "lease_reclaim_interval_seconds": 3600,
        "job_lease_seconds": 3600, **provider})
    client = make_client(settings, engine=FixedEngine(), clock=clock)
    runtime = runtime_of(client)
    key = issue(client, "acme")
    job_id = client.post("/v1/read", content=BODY, headers=auth(key)).json()["id"]
    retry = timedelta(seconds=RETRY_AFTER_SECONDS)

    with down(), caplog.at_level(logging.WARNING, logger="ocrvault.jobs.worker"):
        for _ in range(MAX_ATTEMPTS + 2):  # more turns than a crashing job is allowed
            runtime.worker.process(job_id)
            row = job_row(runtime.db, job_id)
            assert (row["status"], row["attempts"], row["error_code"]) == ("running", 0, None)
            assert row["lease_expires_at"] == clock.now + retry
            assert runtime.leases.reclaim_expired() == []  # not before its delay
            clock.advance(retry + timedelta(seconds=1))
            assert runtime.leases.reclaim_expired() == [job_id]
            assert job_row(runtime.db, job_id)["status"] == "queued"
    assert f"job {job_id}: key service unavailable" in caplog.text

    runtime.worker.process(job_id)  # the provider is back

    job = wait_for_job(client, job_id, key)
    assert job["status"] == "succeeded", job
    assert job_row(runtime.db, job_id)["attempts"] == 1


def test_keys_status_names_the_provider_and_fails_while_it_is_down(
        databases: TestDatabases, tmp_path: Path,
        outage: tuple[dict[str, object], Callable[[], AbstractContextManager[None]]]) -> None:
    provider, down = outage
    env = {**databases.env(tmp_path / "data"),
           **{f"OCRVAULT_{name.upper()}": str(value) for name, value in provider.items()}}
    cli = CliRunner()

    up = cli.invoke(cli_app, ["keys", "status"], env=env)
    with down():
        lost = cli.invoke(cli_app, ["keys", "status"], env=env)

    assert up.exit_code == 0, up.output
    assert up.output.startswith(f"master key: {provider['key_provider']}, key ")
    assert lost.exit_code == 1
    first, *rest = lost.output.splitlines()
    assert first.startswith(f"master key: {provider['key_provider']}, unavailable "
                            "(key_service_unavailable: ")
    assert rest == up.output.splitlines()[1:]  # the keyring and the key store, still shown

"""The service on an S3 bucket (OCRVAULT_BLOB_STORE=s3) against a real S3-protocol server:
only ciphertext reaches the bucket, a DELETE leaves nothing of the job there, and a bucket
that cannot be reached is a 503 the client can retry, not a 500."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ocrvault.config import Settings
from ocrvault.store.blobs import open_blob_store
from ocrvault.store.blobs_s3 import S3BlobStore
from tests.conftest import assert_problem, auth, runtime_of
from tests.docgen import canary as make_canary
from tests.docgen import encode, text_page
from tests.leaks import blob_files, distinctive_window
from tests.s3server import REGION, bucket_objects, new_bucket, s3_client
from tests.servers import free_port

Maker = Callable[..., TestClient]

pytestmark = pytest.mark.usefixtures("aws_credentials")  # a store without them fails otherwise


def on_s3(tmp_path: Path, endpoint: str, bucket: str, **overrides: object) -> Settings:
    # No OCR worker threads: the test runs the worker itself, so that it can look into
    # the bucket while the sealed input is there and again once the job is done.
    values: dict[str, object] = {
        "data_dir": tmp_path / "data", "workers": 0, "reaper_interval_seconds": 3600,
        "blob_store": "s3", "s3_bucket": bucket, "s3_prefix": "ocrvault",
        "s3_endpoint_url": endpoint, "s3_region": REGION}
    return Settings(**{**values, **overrides})


def plaintext_in(objects: dict[str, bytes], needles: list[bytes]) -> list[str]:
    return [f"{key}: {needle[:16]!r}" for key, body in objects.items() for needle in needles
            if needle in body]


@pytest.mark.parametrize("versioned", [False, True], ids=["plain-bucket", "versioned-bucket"])
def test_only_ciphertext_reaches_the_bucket_and_delete_removes_the_jobs_objects(
        make_client: Maker, tmp_path: Path, s3_endpoint: str, versioned: bool) -> None:
    bucket = new_bucket(s3_endpoint, versioned=versioned)
    settings = on_s3(tmp_path, s3_endpoint, bucket)
    client = make_client(settings)
    runtime = runtime_of(client)
    assert client.get("/readyz").json()["checks"]["blob_store"] == "ok"
    issued = runtime.access.bootstrap_tenant("acme")
    canary = make_canary()
    document = encode(text_page([f"Canary {canary}"], size=(1400, 300)), "PNG")
    needles = [canary.encode(), canary.encode("utf-16-le"), canary.encode("utf-16-be"),
               *(distinctive_window(part) or b"" for part in (
                   document[:4096], document[len(document) // 2:], document[-4096:]))]

    response = client.post("/v1/read", content=document, params={"outputs": "text"},
                           headers=auth(issued.secret))
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    job_prefix = f"ocrvault/{issued.tenant_id}/{job_id}/"
    submitted = bucket_objects(s3_endpoint, bucket)
    assert set(submitted) == {job_prefix + "input"}
    assert plaintext_in(submitted, needles) == []

    runtime.worker.process(job_id)
    job = client.get(f"/v1/jobs/{job_id}", headers=auth(issued.secret)).json()
    assert job["status"] == "succeeded", job
    assert canary in job["result"]["text"], "the canary must be read, or this proves nothing"
    text = client.get(f"/v1/jobs/{job_id}/outputs/text", headers=auth(issued.secret)).text
    assert canary in text
    finished = bucket_objects(s3_endpoint, bucket)
    assert set(finished) == {job_prefix + "result", job_prefix + "output-text"}
    assert plaintext_in(finished, needles) == []
    assert blob_files(settings.blob_dir) == set(), "nothing of the job may land on local disk"

    deleted = client.delete(f"/v1/jobs/{job_id}", headers=auth(issued.secret))
    assert deleted.status_code == 200, deleted.text
    assert bucket_objects(s3_endpoint, bucket) == {}
    if versioned:
        # What docs/security.md says a versioned bucket keeps: every object's earlier
        # versions, until a NoncurrentVersionExpiration rule removes them. They are the
        # same ciphertext, and the job's data key that opened them is gone.
        versions = s3_client(s3_endpoint).list_object_versions(Bucket=bucket, Prefix=job_prefix)
        kept = {entry["Key"] for entry in versions.get("Versions", [])}
        assert kept == {job_prefix + kind for kind in ("input", "result", "output-text")}
        assert {m["Key"] for m in versions.get("DeleteMarkers", [])} == kept


def test_a_bucket_that_cannot_be_reached_is_503_storage_unavailable_with_retry_after(
        make_client: Maker, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    client = make_client(on_s3(tmp_path, nobody, "ocrvault-blobs", s3_max_attempts=1,
                               s3_connect_timeout_seconds=0.5, s3_read_timeout_seconds=0.5))
    key = runtime_of(client).access.bootstrap_tenant("acme").secret
    document = encode(text_page(["Not stored anywhere"], size=(800, 200)), "PNG")

    response = client.post("/v1/read", content=document, headers=auth(key))
    body = assert_problem(response, 503, "storage_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert "127.0.0.1" not in body["detail"], "the detail is for clients, not the topology"
    assert "blob store unavailable: S3 put failed: EndpointConnectionError" in caplog.text
    # The sealed input is written before the job's row: no job was left without its input.
    assert client.get("/v1/jobs", headers=auth(key)).json()["jobs"] == []

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["blob_store"] == "failing: BlobStoreUnavailable"


def test_a_delete_while_the_bucket_is_unreachable_succeeds_and_the_reaper_removes_the_objects(
        make_client: Maker, tmp_path: Path, s3_endpoint: str) -> None:
    bucket = new_bucket(s3_endpoint)
    client = make_client(on_s3(tmp_path, s3_endpoint, bucket))
    runtime = runtime_of(client)
    key = runtime.access.bootstrap_tenant("acme").secret
    document = encode(text_page(["Delete me later"], size=(800, 200)), "PNG")
    job_id = client.post("/v1/read", content=document, headers=auth(key)).json()["id"]
    runtime.worker.process(job_id)
    store = runtime.documents.blobs
    assert isinstance(store, S3BlobStore)
    reachable = store.client
    # The bucket drops off the network: the same store, its calls now to a closed port.
    nobody = f"http://127.0.0.1:{free_port()}"
    unreachable = open_blob_store(on_s3(tmp_path, nobody, bucket, s3_max_attempts=1))
    assert isinstance(unreachable, S3BlobStore)
    store.client = unreachable.client

    # The data key is destroyed first, so the job is deleted whatever the bucket says.
    receipt = client.delete(f"/v1/jobs/{job_id}", headers=auth(key))
    assert receipt.status_code == 200, receipt.text
    assert "data_key" in receipt.json()["deleted"]
    assert_problem(client.get(f"/v1/jobs/{job_id}", headers=auth(key)), 410, "job_deleted")
    assert bucket_objects(s3_endpoint, bucket) != {}, "the bucket was unreachable"

    store.client = reachable
    runtime.reaper.run_once()
    assert bucket_objects(s3_endpoint, bucket) == {}

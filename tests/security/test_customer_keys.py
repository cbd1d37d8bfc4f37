"""Customer-held keys (SSE-C): without the caller's key nobody, the operator included,
reads the job's result once it has finished."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ocrvault.api.app import create_app
from ocrvault.config import Settings
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.errors import IntegrityError
from ocrvault.jobs.service import key_of
from ocrvault.runtime import Runtime
from ocrvault.store.documents import ObjectKind
from ocrvault.store.repository import JobRepository
from tests.conftest import assert_problem, auth, runtime_of, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, text_page

PAGE = encode(text_page(["Customer sealed page"], size=(1000, 200)), "PNG")


def customer_headers(key: bytes) -> dict[str, str]:
    return {"X-Ocrvault-Customer-Key": base64.b64encode(key).decode(),
            "X-Ocrvault-Customer-Key-SHA256":
                base64.b64encode(hashlib.sha256(key).digest()).decode()}


@pytest.fixture
def https(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    """The app as reached over HTTPS (TestClient's peer is not loopback)."""
    plain = make_client(settings)
    return TestClient(plain.app, base_url="https://testserver", raise_server_exceptions=False)


def test_only_the_customer_key_opens_a_finished_job(https: TestClient) -> None:
    runtime = runtime_of(https)
    admin = runtime.access.bootstrap_tenant("acme").secret
    mine, wrong = os.urandom(32), os.urandom(32)

    response = https.post("/v1/read", content=PAGE, params={"outputs": "text"},
                          headers={**auth(admin), **customer_headers(mine)})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    done = wait_for_job(https, job_id, admin, headers=customer_headers(mine))
    assert done["result"]["text"] == "Customer sealed page"
    output = https.get(f"/v1/jobs/{job_id}/outputs/text",
                       headers={**auth(admin), **customer_headers(mine)})
    assert output.text == "Customer sealed page"

    assert_problem(https.get(f"/v1/jobs/{job_id}/outputs/text", headers=auth(admin)),
                   403, "customer_key_required")
    assert_problem(https.get(f"/v1/jobs/{job_id}",
                             headers={**auth(admin), **customer_headers(wrong)}),
                   403, "customer_key_mismatch")

    # The operator, with the database, the blobs and the keyring, cannot open it either.
    with runtime.db.transaction() as session:
        row = JobRepository(session).by_id(job_id)
    assert row is not None
    assert row.wrapped_dek is None and row.customer_wrapped_dek is not None
    assert row.customer_key_sha256 == customer_headers(mine)["X-Ocrvault-Customer-Key-SHA256"]
    with pytest.raises(IntegrityError):
        runtime.documents.get(key_of(row), ObjectKind.RESULT)


def test_a_mangled_key_is_refused_before_anything_is_stored(https: TestClient,
                                                            settings: Settings) -> None:
    admin = runtime_of(https).access.bootstrap_tenant("acme").secret
    headers = customer_headers(os.urandom(32))
    headers["X-Ocrvault-Customer-Key-SHA256"] = customer_headers(os.urandom(32))[
        "X-Ocrvault-Customer-Key-SHA256"]
    assert https.post("/v1/read", content=PAGE,
                      headers={**auth(admin), **headers}).status_code == 400
    half = {"X-Ocrvault-Customer-Key": headers["X-Ocrvault-Customer-Key"]}
    assert_problem(https.post("/v1/read", content=PAGE, headers={**auth(admin), **half}),
                   400, "invalid_parameter")
    short = customer_headers(os.urandom(16))
    assert https.post("/v1/read", content=PAGE,
                      headers={**auth(admin), **short}).status_code == 400
    assert not [p for p in settings.blob_dir.rglob("*") if p.is_file()]


def test_a_customer_key_over_plain_http_off_loopback_is_refused(client: TestClient,
                                                                admin_key: str) -> None:
    headers = {**auth(admin_key), **customer_headers(os.urandom(32))}
    assert_problem(client.post("/v1/read", content=PAGE, headers=headers), 403,
                   "insecure_transport")
    assert_problem(client.get("/v1/jobs/x", headers=headers), 403, "insecure_transport")


def test_deleting_a_customer_keyed_job_needs_no_key_and_destroys_both_wraps(
    https: TestClient,
) -> None:
    runtime = runtime_of(https)
    admin = runtime.access.bootstrap_tenant("acme").secret
    key = customer_headers(os.urandom(32))
    job_id = https.post("/v1/read", content=PAGE, headers={**auth(admin), **key}).json()["id"]
    wait_for_job(https, job_id, admin, headers=key)

    assert https.delete(f"/v1/jobs/{job_id}", headers=auth(admin)).status_code == 200

    with runtime.db.transaction() as session:
        row = JobRepository(session).by_id(job_id)
    assert row is not None and row.wrapped_dek is None and row.customer_wrapped_dek is None


def test_a_queued_customer_job_survives_a_restart(
    databases: TestDatabases,
    make_client: Callable[..., TestClient], tmp_path: Path, engine: TesseractEngine
) -> None:
    """While queued the DEK is also under the master key, so a restart loses nothing."""
    data_dir = tmp_path / "data"
    idle = make_client(databases.settings(data_dir, workers=0))
    admin = runtime_of(idle).access.bootstrap_tenant("acme").secret
    key = os.urandom(32)
    secure = TestClient(idle.app, base_url="https://testserver")
    job_id = secure.post("/v1/read", content=PAGE,
                         headers={**auth(admin), **customer_headers(key)}).json()["id"]
    idle.__exit__(None, None, None)

    runtime = Runtime.build(databases.settings(data_dir, workers=1), engine=engine)
    with TestClient(create_app(runtime), base_url="https://testserver") as restarted:
        body = wait_for_job(restarted, job_id, admin, headers=customer_headers(key))
    assert body["result"]["text"] == "Customer sealed page"

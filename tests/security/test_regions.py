"""Data residency: two regions on one machine, each with its own database, blob store and
keys. A node serves its own region's tenants only; another region's key is sent home with
421 before its body is read, and a tenant's documents, text and keys exist only at home."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ocrvault.access.keys import KEY_PATTERN, parse_key
from ocrvault.audit import AuditAction
from ocrvault.cli import app as cli_app
from ocrvault.config import Settings
from tests.conftest import assert_problem, auth, issue, runtime_of, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, text_page

URLS = {"eu-central": "https://ocr.eu.example", "us-east": "https://ocr.us.example"}
CANARY = "RESIDENCYCANARY"
PAGE = encode(text_page([CANARY], size=(900, 200)), "PNG")


def region(databases: TestDatabases, tmp_path: Path, name: str) -> Settings:
    """A region's own data dir (database, blobs) and keys (keyring, key store)."""
    return databases.settings(tmp_path / name / "data",
                              keyring_path=tmp_path / name / "keys" / "keyring.json",
                              region=name, region_urls=URLS, workers=1,
                              reaper_interval_seconds=3600)


def files_of(databases: TestDatabases, root: Path) -> dict[Path, bytes]:
    """Every file of a region, and its database's live rows (on PostgreSQL not a file)."""
    files = {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}
    return {**files, root / "database rows": databases.contents(root / "data")}


def test_each_tenant_is_served_and_stored_in_its_home_region_only(
        databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    eu_settings = region(databases, tmp_path, "eu-central")
    us_settings = region(databases, tmp_path, "us-east")
    eu, us = make_client(eu_settings), make_client(us_settings)
    acme, globex = issue(eu, "acme"), issue(us, "globex")
    parsed = parse_key(acme)
    assert parsed is not None and parsed.region == "eu-central"
    assert KEY_PATTERN.fullmatch(acme)  # still found by secret scanners and log redaction

    # Over the upload cap: read first, it would be a 413; it is sent home unread.
    oversized = PAGE + b"\0" * (us_settings.max_file_bytes + 1)
    misdirected = us.post("/v1/read", content=oversized, headers=auth(acme))
    body = assert_problem(misdirected, 421, "wrong_region")
    assert misdirected.headers["location"] == URLS["eu-central"]
    assert URLS["eu-central"] in body["detail"]
    assert misdirected.headers["connection"] == "close"  # the body is not read at all
    assert_problem(us.get("/v1/jobs", headers=auth(acme)), 421, "wrong_region")

    job_id = eu.post("/v1/read", content=PAGE, headers=auth(acme)).json()["id"]
    result = wait_for_job(eu, job_id, acme)
    assert result["status"] == "succeeded"
    assert result["result"]["region"] == "eu-central" and CANARY in result["result"]["text"]
    other = us.post("/v1/read", content=PAGE, headers=auth(globex)).json()["id"]
    assert wait_for_job(us, other, globex)["result"]["region"] == "us-east"

    # The EU tenant's key, job and blobs are in the EU's stores and nowhere in the US's.
    eu_runtime, us_runtime = runtime_of(eu), runtime_of(us)
    eu_keys, us_keys = eu_runtime.documents.tenant_keys, us_runtime.documents.tenant_keys
    assert eu_keys is not None and us_keys is not None
    (acme_tenant,) = eu_keys.tenants()
    assert acme_tenant not in us_keys.tenants()
    us_files = files_of(databases, tmp_path / "us-east")
    assert not any(acme_tenant in str(path) or acme_tenant.encode() in data
                   or job_id.encode() in data or CANARY.encode() in data
                   for path, data in us_files.items())
    eu_files = files_of(databases, tmp_path / "eu-central")
    assert any(acme_tenant in str(path) for path in eu_files)  # its blobs and keys
    assert not any(CANARY.encode() in data for data in eu_files.values())  # sealed there too

    # The audit log records where the job was processed.
    exported = CliRunner().invoke(cli_app, ["audit", "export", "--tenant", "acme"],
                                  env={**databases.env(eu_settings.data_dir),
                                       "OCRVAULT_KEYRING_PATH": str(eu_settings.keyring_path),
                                       "OCRVAULT_REGION": "eu-central"}).output
    processed = [json.loads(line) for line in exported.splitlines()
                 if json.loads(line)["action"] == AuditAction.JOB_PROCESSED]
    assert [json.loads(entry["detail"]) for entry in processed] == [{"region": "eu-central"}]

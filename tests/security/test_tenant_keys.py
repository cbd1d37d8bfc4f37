"""Per-tenant keys: offboarding destroys a tenant's key and with it everything it stored, at
once; a tenant's own KMS key, once its grant to ocrvault is revoked, locks the operator out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ocrvault.audit import AuditAction
from ocrvault.cli import app as cli_app
from ocrvault.crypto.master import KeyAccessDenied
from ocrvault.crypto.tenant_keys import TenantOffboarded
from ocrvault.errors import IntegrityError
from ocrvault.jobs.service import key_of
from ocrvault.store.documents import ObjectKind
from ocrvault.store.repository import JobRepository
from tests.conftest import assert_problem, auth, issue, runtime_of, wait_for_job
from tests.databases import ON_POSTGRES, TestDatabases
from tests.docgen import encode, text_page
from tests.s3server import REGION, moto_server

PAGE = encode(text_page(["tenant secret"], size=(600, 200)), "PNG")


def finished_job(client: TestClient, key: str) -> str:
    response = client.post("/v1/read", content=PAGE, headers=auth(key))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    wait_for_job(client, job_id, key)
    return job_id


def result_of(client: TestClient, job_id: str) -> bytes:
    runtime = runtime_of(client)
    with runtime.db.transaction() as session:
        row = JobRepository(session).by_id(job_id)
    assert row is not None
    return runtime.documents.get(key_of(row), ObjectKind.RESULT)


def test_offboarding_asks_for_the_name_then_makes_everything_of_the_tenant_unreadable(
        databases: TestDatabases, make_client: Callable[..., TestClient],
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    client = make_client(databases.settings(data_dir, workers=1))
    acme, globex = issue(client, "acme"), issue(client, "globex")
    gone, other = finished_job(client, acme), finished_job(client, globex)
    cli, env = CliRunner(), databases.env(data_dir)
    # `ocrvault backup` copies the SQLite file; on PostgreSQL pg_dump is the operator's.
    backup = None if ON_POSTGRES else tmp_path / "backup"
    if backup is not None:
        assert cli.invoke(cli_app, ["backup", "create", str(backup)], env=env).exit_code == 0

    unconfirmed = cli.invoke(cli_app, ["tenant", "offboard", "acme", "--confirm", "acm"], env=env)
    assert unconfirmed.exit_code == 2 and "repeating the tenant's name" in unconfirmed.output
    assert b"tenant secret" in result_of(client, gone)  # nothing happened

    done = cli.invoke(cli_app, ["tenant", "offboard", "acme", "--confirm", "acme"], env=env)
    assert done.exit_code == 0, done.output
    assert "1 jobs unreadable, 1 API keys revoked" in done.output
    with pytest.raises((IntegrityError, TenantOffboarded)):
        result_of(client, gone)  # at once, the blobs still in place
    assert_problem(client.get(f"/v1/jobs/{gone}", headers=auth(acme)), 401, "unauthorized")
    assert b"tenant secret" in result_of(client, other)  # another tenant is untouched
    exported = cli.invoke(cli_app, ["audit", "export", "--tenant", "acme"], env=env).output
    offboarded = [json.loads(line) for line in exported.splitlines()
                  if json.loads(line)["action"] == AuditAction.TENANT_OFFBOARDED]
    assert len(offboarded) == 1
    assert json.loads(offboarded[0]["detail"]) == {"keys_destroyed": 2, "jobs": 1,
                                                   "api_keys_revoked": 1}

    # Nothing new is ever wrapped for it, and a backup from before opens nothing of it.
    tenant_keys = runtime_of(client).documents.tenant_keys
    assert tenant_keys is not None
    with runtime_of(client).db.transaction() as session:
        acme_id = JobRepository(session).by_id(gone)
    assert acme_id is not None
    with pytest.raises(TenantOffboarded):
        tenant_keys.wrap_dek(bytes(32), acme_id.tenant_id, "new-job", acme_id.created_at)
    if backup is not None:
        assert cli.invoke(cli_app, ["backup", "restore", str(backup)], env=env).exit_code == 0
        with pytest.raises((IntegrityError, TenantOffboarded)):
            result_of(client, gone)
        assert b"tenant secret" in result_of(client, other)


@pytest.fixture
def revocable_kms(aws_credentials: None, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[tuple[str, str, Callable[[], None]]]:
    """An IAM-enforcing KMS: the tenant's key, ocrvault's credentials holding a grant on it
    (in the environment, as a deployment's), and the tenant's way to revoke that grant."""
    # Unchecked setup calls: the key, two users with an access key and a policy each.
    with moto_server(authorize_after=7) as endpoint:
        root = boto3.session.Session()
        kms = root.client("kms", endpoint_url=endpoint, region_name=REGION)
        iam = root.client("iam", endpoint_url=endpoint, region_name=REGION)
        key_arn = kms.create_key(Description="acme's own key")["KeyMetadata"]["Arn"]
        credentials = {}
        for user, actions in (("acme-admin", ["iam:*", "kms:*"]),
                              ("ocrvault", ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"])):
            iam.create_user(UserName=user)
            access = iam.create_access_key(UserName=user)["AccessKey"]
            iam.put_user_policy(UserName=user, PolicyName="grant", PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
            credentials[user] = access
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["ocrvault"]["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["ocrvault"]["SecretAccessKey"])
        tenant_iam = boto3.session.Session(
            aws_access_key_id=credentials["acme-admin"]["AccessKeyId"],
            aws_secret_access_key=credentials["acme-admin"]["SecretAccessKey"],
        ).client("iam", endpoint_url=endpoint, region_name=REGION)
        yield endpoint, key_arn, lambda: tenant_iam.delete_user_policy(
            UserName="ocrvault", PolicyName="grant")


def test_a_revoked_grant_on_the_tenants_own_kms_key_locks_the_operator_out(
        databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path,
        revocable_kms: tuple[str, str, Callable[[], None]]) -> None:
    endpoint, key_arn, revoke = revocable_kms
    data_dir = tmp_path / "data"
    client = make_client(databases.settings(data_dir, workers=1, kms_endpoint_url=endpoint,
                                            kms_region=REGION, kms_max_attempts=1,
                                            tenant_key_cache_seconds=0))
    acme, globex = issue(client, "acme"), issue(client, "globex")
    cli = CliRunner()
    env = {**databases.env(data_dir), "OCRVAULT_KMS_ENDPOINT_URL": endpoint,
           "OCRVAULT_KMS_REGION": REGION}
    moved = cli.invoke(cli_app, ["tenant", "kms-key", "acme", key_arn], env=env)
    assert moved.exit_code == 0, moved.output
    job_id = finished_job(client, acme)
    other = finished_job(client, globex)
    assert b"tenant secret" in result_of(client, job_id)
    tenant_keys = runtime_of(client).documents.tenant_keys
    assert tenant_keys is not None
    with runtime_of(client).db.transaction() as session:
        row = JobRepository(session).by_id(job_id)
    assert row is not None
    info = tenant_keys.info(row.tenant_id)
    assert info is not None and info.wrapped_by == "kms" and info.kms_key_id == key_arn

    revoke()

    with pytest.raises(KeyAccessDenied):
        result_of(client, job_id)
    assert_problem(client.get(f"/v1/jobs/{job_id}/outputs/text", headers=auth(acme)), 403,
                   "key_access_denied")
    assert_problem(client.post("/v1/read", content=PAGE, headers=auth(acme)), 403,
                   "key_access_denied")
    assert b"tenant secret" in result_of(client, other)  # the master key's tenants read on

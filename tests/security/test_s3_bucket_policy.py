"""The least-privilege bucket policy docs/security.md gives is enough for ocrvault, and no
more is asked: the blob store is run against an S3 server that enforces IAM, as a user
holding only that policy. The policy is read from the doc, so the two cannot drift."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from ocrvault.config import Settings
from ocrvault.store.blobs import BlobStoreUnavailable, open_blob_store
from tests.s3server import REGION, moto_server, new_bucket, s3_client

SECURITY_MD = Path(__file__).resolve().parents[2] / "docs" / "security.md"
BUCKET = "ocrvault-policy"


def documented(heading: str) -> str:
    """The first ```json block under ``heading`` in docs/security.md."""
    text = SECURITY_MD.read_text()
    after = text[text.index(heading):]
    found = re.search(r"```json\n(.*?)```", after, re.DOTALL)
    assert found, f"no JSON block under {heading!r}"
    return found.group(1)


# AWS authorises DeleteObjects key by key against s3:DeleteObject on each object, which the
# documented policy grants; moto 5 checks the whole request against the bucket's ARN first.
# This statement satisfies moto's check and grants nothing on AWS (DeleteObject acts on
# objects, never on a bucket), so the policy proven here is the documented one in effect.
MOTO_DELETE_OBJECTS = {"Effect": "Allow", "Action": "s3:DeleteObject",
                       "Resource": f"arn:aws:s3:::{BUCKET}"}


@pytest.fixture(scope="module")
def policy_holder(aws_credentials: None) -> Iterator[tuple[str, dict[str, str]]]:
    """An IAM-enforcing S3 server, and the access key of a user holding only the policy."""
    # Four unchecked calls: the bucket, the user, its access key, its policy.
    with moto_server(authorize_after=4) as endpoint:
        admin = boto3.session.Session()
        s3 = admin.client("s3", endpoint_url=endpoint, region_name=REGION)
        iam = admin.client("iam", endpoint_url=endpoint, region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        iam.create_user(UserName="ocrvault")
        access = iam.create_access_key(UserName="ocrvault")["AccessKey"]
        policy = json.loads(documented("### The bucket policy a deployment needs")
                            .replace("BUCKET", BUCKET))
        policy["Statement"].append(MOTO_DELETE_OBJECTS)
        iam.put_user_policy(UserName="ocrvault", PolicyName="ocrvault-blobs",
                            PolicyDocument=json.dumps(policy))
        yield endpoint, {"AWS_ACCESS_KEY_ID": access["AccessKeyId"],
                         "AWS_SECRET_ACCESS_KEY": access["SecretAccessKey"]}


@pytest.fixture
def as_policy_holder(policy_holder: tuple[str, dict[str, str]], tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for a store whose credentials come from the environment, as a deployment's
    would, and belong to the user holding only the documented policy."""
    endpoint, credentials = policy_holder
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    return Settings(data_dir=tmp_path / "data", blob_store="s3", s3_bucket=BUCKET,
                    s3_prefix="ocrvault", s3_endpoint_url=endpoint, s3_region=REGION)


def test_the_documented_policy_allows_every_blob_store_call(as_policy_holder: Settings) -> None:
    store = open_blob_store(as_policy_holder)
    store.ping()
    store.put("t/j/input", b"sealed")
    store.put("t/j/result", b"sealed")
    assert store.get("t/j/input") == b"sealed"
    assert store.get("t/j/missing") is None
    store.delete("t/j/input")
    store.delete_prefix("t/j")
    assert store.get("t/j/result") is None


def test_the_documented_policy_allows_nothing_outside_the_prefix(
        as_policy_holder: Settings) -> None:
    elsewhere = open_blob_store(as_policy_holder.model_copy(update={"s3_prefix": "other"}))
    with pytest.raises(BlobStoreUnavailable, match="AccessDenied"):
        elsewhere.put("t/j/input", b"sealed")


def test_the_documented_lifecycle_rule_is_accepted_by_s3(s3_endpoint: str) -> None:
    bucket = new_bucket(s3_endpoint, versioned=True)
    rules = json.loads(documented("### What a delete leaves in the bucket"))
    client = s3_client(s3_endpoint)
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=rules)
    [rule] = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
    assert rule["Expiration"]["ExpiredObjectDeleteMarker"] is True

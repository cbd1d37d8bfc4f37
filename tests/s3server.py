"""A real S3-protocol server for tests: moto's standalone server in a subprocess on a free
loopback port, and buckets of its own for each test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import IO, TYPE_CHECKING

import boto3
import pytest

from tests.servers import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"

# Credentials for the usual AWS chain to find in the environment, as a deployment's would;
# moto accepts any. Shared config files are pointed away, so a developer's own profile
# can neither leak into nor change the tests.
TEST_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "ocrvault-test",
    "AWS_SECRET_ACCESS_KEY": "ocrvault-test-secret",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@contextmanager
def moto_server(authorize_after: int | None = None) -> Iterator[str]:
    """Runs ``python -m moto.server`` until the block ends; yields its endpoint URL.

    With ``authorize_after`` the server lets that many calls through unchecked (to set
    up users and policies) and then checks every call against IAM, as AWS does."""
    port = free_port()
    server_env = {**os.environ, **TEST_AWS_ENV}
    if authorize_after is not None:
        server_env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(authorize_after)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=server_env)
        try:
            _wait_until_listening(process, port, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def aws_test_environment() -> Iterator[None]:
    """TEST_AWS_ENV in the environment until the block ends."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_AWS_ENV.items():
            patch.setenv(name, value)
        yield


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise RuntimeError(f"moto server exited with {process.returncode}: {output}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("moto server did not listen within 60 s")
        time.sleep(0.05)


def new_bucket(endpoint: str, *, versioned: bool = False) -> str:
    """A fresh, empty bucket on the server: tests never see each other's objects."""
    name = f"ocrvault-{uuid.uuid4().hex[:20]}"
    client = s3_client(endpoint)
    client.create_bucket(Bucket=name)
    if versioned:
        client.put_bucket_versioning(Bucket=name,
                                     VersioningConfiguration={"Status": "Enabled"})
    return name


@cache  # making a client loads botocore's models: a second or so on a busy machine
def s3_client(endpoint: str) -> S3Client:
    """A plain boto3 client, to look into a bucket from outside ocrvault."""
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION)


def bucket_objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    """Every object in ``bucket``, by key, with its bytes."""
    client = s3_client(endpoint)
    objects: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            objects[entry["Key"]] = body
    return objects

"""Sealed objects in an S3-compatible bucket (``OCRVAULT_BLOB_STORE=s3``); see blobs.py.

A module of its own so that boto3 is loaded only by a deployment that uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ocrvault.config import Settings
from ocrvault.store.blobs import checked_key, store_failed

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# DeleteObjects takes at most this many keys per call (the S3 API's limit).
_DELETE_BATCH = 1000


class S3BlobStore:
    """Objects in an S3-compatible bucket, under ``prefix/`` when a prefix is given.

    ``client`` is a boto3 S3 client; :meth:`from_settings` makes one whose credentials come
    from the usual AWS sources (environment, shared config and profile, container or
    instance role) and whose timeouts bound every call (see :func:`s3_client_config`).
    A deleted object is gone from the bucket's current view; in a versioned bucket its
    earlier versions remain until a lifecycle rule expires them (docs/security.md).
    """

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        if not bucket:
            raise ValueError("an S3 blob store needs a bucket")
        self.client = client
        self.bucket = bucket
        # The prefix obeys the key rules too: no empty part, no "..", nothing to escape.
        self.prefix = checked_key(prefix.strip("/")) + "/" if prefix.strip("/") else ""

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BlobStore:
        if not settings.s3_bucket:
            raise ValueError("OCRVAULT_BLOB_STORE=s3 needs OCRVAULT_S3_BUCKET")
        # A session of its own: boto3's default session is shared, module-wide state.
        client = boto3.session.Session().client(
            "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region,
            config=s3_client_config(settings))
        return cls(client, settings.s3_bucket, settings.s3_prefix)

    def _name(self, key: str) -> str:
        return self.prefix + checked_key(key)

    def put(self, key: str, data: bytes) -> None:
        name = self._name(key)
        with _unavailable_on_failure("put"):
            self.client.put_object(Bucket=self.bucket, Key=name, Body=data)

    def get(self, key: str) -> bytes | None:
        name = self._name(key)
        with _unavailable_on_failure("get"):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=name)
            except ClientError as error:
                if _error_code(error) == "NoSuchKey":
                    return None
                raise
            return response["Body"].read()

    def delete(self, key: str) -> None:
        name = self._name(key)
        with _unavailable_on_failure("delete"):
            # S3 answers 204 for a key that is not there: deleting twice is no error.
            self.client.delete_object(Bucket=self.bucket, Key=name)

    def delete_prefix(self, prefix: str) -> None:
        below = self._name(prefix) + "/"
        with _unavailable_on_failure("delete_prefix"):
            batch: list[str] = []
            for name in self._names_under(below):
                batch.append(name)
                if len(batch) == _DELETE_BATCH:
                    self._delete_batch(batch)
                    batch = []
            if batch:
                self._delete_batch(batch)

    def _names_under(self, below: str) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=below)
        for page in pages:
            for entry in page.get("Contents", []):
                yield entry["Key"]

    def _delete_batch(self, names: list[str]) -> None:
        answer = self.client.delete_objects(Bucket=self.bucket, Delete={
            "Objects": [{"Key": name} for name in names], "Quiet": True})
        # DeleteObjects answers 200 even when some keys failed: they are listed here.
        if failed := answer.get("Errors"):
            codes = sorted({entry.get("Code", "unknown") for entry in failed})
            raise store_failed(
                f"S3 refused to delete {len(failed)} of {len(names)} objects: {codes}")

    def ping(self) -> None:
        # A one-key listing under our prefix: what the least-privilege policy allows
        # (ListBucket on the prefix), where HeadBucket would need more.
        with _unavailable_on_failure("ping"):
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)


def s3_client_config(settings: Settings) -> Config:
    """Timeouts and retries set explicitly, so that a hung store fails a call in bounded
    time, never holds it for ever: at most ``s3_max_attempts`` tries in all, each within
    the connect timeout plus the read timeout (plus 1 s that botocore waits for a
    ``100 Continue`` on a write), with a jittered backoff of up to 2**try s between tries."""
    return Config(
        connect_timeout=settings.s3_connect_timeout_seconds,
        read_timeout=settings.s3_read_timeout_seconds,
        retries={"mode": "standard", "total_max_attempts": settings.s3_max_attempts},
        # Every OCR worker and request thread may hold a connection at once.
        max_pool_connections=max(10, 2 * settings.workers + 8),
    )


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def _unavailable_on_failure(operation: str) -> Iterator[None]:
    """Turns botocore's failures (transport, timeouts, credentials, error answers) into
    BlobStoreUnavailable, naming the operation and the cause but no key or content."""
    try:
        yield
    except ClientError as error:
        raise store_failed(
            f"S3 {operation} failed: {_error_code(error) or 'error'}") from error
    except BotoCoreError as error:
        raise store_failed(f"S3 {operation} failed: {type(error).__name__}") from error



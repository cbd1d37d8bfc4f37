"""Where sealed objects live. A BlobStore only ever sees ciphertext.

Two implementations of one interface, chosen by ``OCRVAULT_BLOB_STORE``
(:func:`open_blob_store`): a local directory (the embedded default) and an S3-compatible
bucket. Both pass ``tests/contract/test_blob_store.py``.

The local implementation writes atomically (temp file in the same directory,
fsync, rename) so that a crash never leaves a half-written object under a real
name. Keys are validated, so a crafted id can never escape the root directory
or the bucket prefix.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

_KEY_PART = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# What a client is told to wait before retrying a request that met an unavailable store.
RETRY_AFTER_SECONDS = 5

# DeleteObjects takes at most this many keys per call (the S3 API's limit).
_DELETE_BATCH = 1000


class BlobStoreUnavailable(Unavailable):
    """The store could not serve the call: unreachable, timed out, overloaded, or refusing
    ocrvault's credentials. The API answers 503 ``storage_unavailable`` with Retry-After.

    A write that raised this may or may not have taken effect; every operation is
    idempotent, so doing it again is safe. The message names the cause for the operator's
    log and holds no object content.
    """

    def __init__(self, cause: str) -> None:
        super().__init__(ErrorCode.STORAGE_UNAVAILABLE,
                         "Document storage is unavailable; try again later.",
                         RETRY_AFTER_SECONDS)
        self.cause = cause

    def __str__(self) -> str:
        return f"{self.code}: {self.cause}"


class BlobStore(Protocol):
    """Sealed objects by key. Keys are ``blob_key(...)`` strings: 1 to 64 characters of
    ``[A-Za-z0-9_-]`` per part, parts joined by ``/``. Every method raises ValueError for
    any other key, before it reaches the store, and BlobStoreUnavailable when the store
    cannot serve it; nothing else, apart from programming errors.
    """

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing what was there; a reader sees the old
        object or the new one whole, never a part."""

    def get(self, key: str) -> bytes | None:
        """The object under ``key``, or None when there is none (a prefix of stored keys
        is not itself an object)."""

    def delete(self, key: str) -> None:
        """Remove the object under ``key``; removing one that is not there is no error."""

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object whose key starts with ``prefix + "/"`` (a job's objects under
        ``tenant/job``), and nothing else; no objects under it is no error."""

    def ping(self) -> None:
        """Return when the store can serve calls; raise BlobStoreUnavailable when it cannot,
        within the store's configured timeouts."""


def _failed(cause: str) -> BlobStoreUnavailable:
    """The error to raise, logged here: the client's 503 says only "try again later", so
    this line is where the operator learns why (no key, no content: a cause)."""
    log.warning("blob store unavailable: %s", cause)
    return BlobStoreUnavailable(cause)


def blob_key(*parts: str) -> str:
    for part in parts:
        if not _KEY_PART.fullmatch(part):
            raise ValueError("blob key part must be 1-64 characters of [A-Za-z0-9_-]")
    return "/".join(parts)


def checked_key(key: str) -> str:
    """``key`` itself when it is a valid blob key; ValueError otherwise. Keys come from the
    store layer only, but are checked again where they meet a path or a bucket."""
    return blob_key(*key.split("/"))


class LocalBlobStore:
    """Objects as files under ``root`` (0700 directories, 0600 files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, key: str) -> Path:
        return self.root / checked_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except OSError as error:  # a full or read-only disk: the store cannot take writes
            raise _failed(f"writing a blob failed: {error.strerror}") from error

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as error:
            raise _failed(f"reading a blob failed: {error.strerror}") from error

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except (IsADirectoryError, NotADirectoryError):
            return  # a prefix, or below an object: no object of that name
        except OSError as error:
            raise _failed(f"deleting a blob failed: {error.strerror}") from error

    def delete_prefix(self, prefix: str) -> None:
        root = self._path(prefix)
        # By hand rather than shutil.rmtree: several reapers may race on one job, so a
        # file or folder that vanished meanwhile is success, while any other failure
        # must be raised, not ignored (that would leave ciphertext behind silently).
        try:
            for folder, subfolders, names in os.walk(root, topdown=False):
                for name in names:
                    Path(folder, name).unlink(missing_ok=True)
                for name in subfolders:
                    _rmdir_if_present(Path(folder, name))
            _rmdir_if_present(root)
        except NotADirectoryError:
            return  # ``prefix`` names an object: nothing lies under it
        except OSError as error:
            raise _failed(f"deleting blobs failed: {error.strerror}") from error

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise _failed(f"the blob directory {self.root} is not writable")


def _rmdir_if_present(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.rmdir()


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
            raise _failed(
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
        raise _failed(
            f"S3 {operation} failed: {_error_code(error) or 'error'}") from error
    except BotoCoreError as error:
        raise _failed(f"S3 {operation} failed: {type(error).__name__}") from error


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store ``settings`` choose: the data dir's ``blobs`` folder, or S3."""
    if settings.blob_store == "s3":
        return S3BlobStore.from_settings(settings)
    return LocalBlobStore(settings.blob_dir)

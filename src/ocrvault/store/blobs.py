"""Where sealed objects live. A BlobStore only ever sees ciphertext.

Two implementations of one interface, chosen by ``OCRVAULT_BLOB_STORE``
(:func:`open_blob_store`): a local directory (the embedded default) and an S3-compatible
bucket (``blobs_s3.py``). Both pass ``tests/contract/test_blob_store.py``.

The local implementation writes atomically (temp file in the same directory,
fsync, rename) so that a crash never leaves a half-written object under a real
name. Keys are validated, so a crafted id can never escape the root directory
or the bucket prefix.
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import suppress
from pathlib import Path
from typing import Protocol

from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, Unavailable

log = logging.getLogger(__name__)

_KEY_PART = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# What a client is told to wait before retrying a request that met an unavailable store.
RETRY_AFTER_SECONDS = 5


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


def store_failed(cause: str) -> BlobStoreUnavailable:
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
            raise store_failed(f"writing a blob failed: {error.strerror}") from error

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as error:
            raise store_failed(f"reading a blob failed: {error.strerror}") from error

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except (IsADirectoryError, NotADirectoryError):
            return  # a prefix, or below an object: no object of that name
        except OSError as error:
            raise store_failed(f"deleting a blob failed: {error.strerror}") from error

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
            raise store_failed(f"deleting blobs failed: {error.strerror}") from error

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise store_failed(f"the blob directory {self.root} is not writable")


def _rmdir_if_present(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.rmdir()


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store ``settings`` choose: the data dir's ``blobs`` folder, or S3."""
    if settings.blob_store == "s3":
        # Imported here: boto3 costs every process that loads it some 20 MB of memory.
        from ocrvault.store.blobs_s3 import S3BlobStore

        return S3BlobStore.from_settings(settings)
    return LocalBlobStore(settings.blob_dir)

"""Where sealed objects live. A BlobStore only ever sees ciphertext.

The local implementation writes atomically (temp file in the same directory,
fsync, rename) so that a crash never leaves a half-written object under a real
name. Keys are validated, so a crafted id can never escape the root directory.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Protocol

from ocrvault.config import Settings

_KEY_PART = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes | None: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def ping(self) -> None: ...


def blob_key(*parts: str) -> str:
    for part in parts:
        if not _KEY_PART.fullmatch(part):
            raise ValueError("blob key part must be 1-64 characters of [A-Za-z0-9_-]")
    return "/".join(parts)


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, key: str) -> Path:
        blob_key(*key.split("/"))  # re-validate: keys come from the store layer only
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise OSError("blob directory is not writable")


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store ``settings.blob_store`` names; every role opens its own through here."""
    return LocalBlobStore(settings.blob_dir)

"""Where tenant keys and epoch keys live, wrapped: a private directory beside the keyring,
never in the database and never in a backup (``ocrvault backup`` copies the database and
the sealed blobs only).

That is what makes destruction real: deleting a key here leaves no copy in the database,
its WAL, a dump, or a versioned bucket, so every backup of those loses what the key
opened. Entries are small files (0600, in 0700 folders) written create-only and
atomically (temp file, fsync, link: two processes creating the same key at once keep
the first one), and removed with the folder fsynced.

Residual risks: a filesystem snapshot or a backup of this directory itself keeps what
was destroyed until it expires, so back it up (if at all) with retention shorter than
one epoch window; on several nodes the directory must be shared (NFS, a mounted volume).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}(/[A-Za-z0-9._-]{1,100}){0,3}$")


class DirectoryKeyStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        if not _NAME.match(name) or ".." in name.split("/"):
            raise ValueError(f"not a key store name: {name!r}")
        return self.root / name

    def get(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def create(self, name: str, data: bytes) -> bytes:
        """Store ``data`` under ``name`` unless something is there already; return what is
        stored (``data``, or what another process stored first)."""
        path = self._path(name)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".new-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # fails if the name exists: the first writer wins
            except FileExistsError:
                return path.read_bytes()
            _fsync_dir(path.parent)
            return data
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def replace(self, name: str, data: bytes) -> None:
        """Overwrite an entry atomically (a rewrap of the same key)."""
        path = self._path(name)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".new-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    def delete(self, name: str) -> bool:
        """Remove an entry for good; whether it was there."""
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    def names(self, folder: str) -> list[str]:
        """The entries directly in ``folder`` (names relative to the store), sorted."""
        path = self._path(folder)
        if not path.is_dir():
            return []
        return sorted(f"{folder}/{entry.name}" for entry in path.iterdir()
                      if entry.is_file() and not entry.name.startswith("."))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

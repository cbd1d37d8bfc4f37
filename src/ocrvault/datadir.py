"""The data dir: private to the account that runs ocrvault, or not used at all.

Every file ocrvault creates is 0600 and every directory 0700: the process umask is
set to 077 before anything is created, which also covers what other code creates for
us (SQLite's database, WAL and SHM files, Alembic's, a blob's parent directories). A
data dir that group or others may enter is refused: its files would be only as
private as the directory, and an old install's 0644 database would be readable.

Residual risks: modes are checked, not ACLs, and not the directories above the data
dir; the account that runs ocrvault, and root, read everything.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, OcrVaultError

PRIVATE_UMASK = 0o077


class UnsafeDataDir(OcrVaultError):
    """The data dir cannot be used safely; the message says what to run."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.INTERNAL_ERROR, detail)


def restrict_umask() -> None:
    """From now on this process creates files 0600 and directories 0700."""
    os.umask(PRIVATE_UMASK)


def prepare_data_dir(path: Path) -> None:
    """Create the data dir 0700, or check that an existing one is private; raise
    UnsafeDataDir if group or others may read, enter or change it."""
    restrict_umask()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UnsafeDataDir(
            f"refusing to use the data dir {path}: its mode is {mode:04o}, so other users may "
            f"read or change the database and blobs; run `chmod 700 {path}` (and "
            f"`chmod -R go= {path}` for the files an older version left in it)"
        )


def keyring_beside_data(settings: Settings) -> bool:
    """Whether the master keys are in a file inside the data dir they protect."""
    return settings.master_key is None and settings.keyring_path.resolve().is_relative_to(
        settings.data_dir.resolve())

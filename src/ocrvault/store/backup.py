"""Backups of the data, never of the keys: ``ocrvault backup create DIR`` / ``restore DIR``.

A backup holds the database (SQLite's online backup API: a consistent copy while the
server runs) and the sealed blobs (ciphertext only), with a manifest. It never holds the
keyring, the HSM or KMS keys, or the key store of tenant and epoch keys: those stay
where they are, so a restored backup opens only what the live keys still open. Data
deleted or expired since the backup was taken is therefore unreadable once its epoch
key is gone (docs/security.md states the bound), and an offboarded tenant's at once.

PostgreSQL: take the database with ``pg_dump`` (docs/deploy.md); an S3 bucket is backed
up by its own versioning or replication. Both hold ciphertext and wrapped keys only.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, InputRejected

MANIFEST = "ocrvault-backup.json"
_FORMAT = "ocrvault-backup/1"
DATABASE_FILE = "ocrvault.db"
BLOBS_DIR = "blobs"


@dataclass(frozen=True, slots=True)
class BackupSummary:
    path: Path
    blobs: int
    database_bytes: int


def _sqlite_path(settings: Settings) -> Path:
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise InputRejected(ErrorCode.INVALID_PARAMETER,
                            "the database is not SQLite: back it up with pg_dump "
                            "(docs/deploy.md, 'Backups'); its blobs with the bucket's versioning")
    return Path(url.database)


def _local_blobs(settings: Settings) -> Path:
    if settings.blob_store != "local":
        raise InputRejected(ErrorCode.INVALID_PARAMETER,
                            "blobs are in S3: back them up with the bucket's versioning or "
                            "replication (docs/deploy.md, 'Backups')")
    return settings.blob_dir


def create_backup(settings: Settings, target: Path, now: datetime) -> BackupSummary:
    """Copy the database and the sealed blobs into ``target`` (new or empty)."""
    database, blobs = _sqlite_path(settings), _local_blobs(settings)
    if target.exists() and any(target.iterdir()):
        raise InputRejected(ErrorCode.INVALID_PARAMETER, f"{target} is not empty")
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    with sqlite3.connect(database) as source, sqlite3.connect(target / DATABASE_FILE) as copy:
        source.backup(copy)  # consistent under concurrent writers, WAL included
    source.close()
    copy.close()
    if blobs.exists():
        shutil.copytree(blobs, target / BLOBS_DIR)
    else:
        (target / BLOBS_DIR).mkdir(mode=0o700)
    count = sum(1 for p in (target / BLOBS_DIR).rglob("*") if p.is_file())
    (target / MANIFEST).write_text(json.dumps({
        "format": _FORMAT, "created_at": now.isoformat(), "database": DATABASE_FILE,
        "blobs": BLOBS_DIR, "blob_count": count,
        "keys": "not included: the keyring, HSM/KMS keys and the key store stay where they are",
    }, indent=2) + "\n")
    return BackupSummary(target, count, (target / DATABASE_FILE).stat().st_size)


def restore_backup(settings: Settings, source: Path) -> BackupSummary:
    """Replace the database and the blobs with those of the backup in ``source``."""
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError):
        raise InputRejected(ErrorCode.INVALID_PARAMETER,
                            f"{source} holds no ocrvault backup ({MANIFEST})") from None
    if manifest.get("format") != _FORMAT:
        raise InputRejected(ErrorCode.INVALID_PARAMETER, f"{source}: unknown backup format")
    database, blobs = _sqlite_path(settings), _local_blobs(settings)
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with sqlite3.connect(source / DATABASE_FILE) as backup, sqlite3.connect(database) as live:
        backup.backup(live)
    backup.close()
    live.close()
    if blobs.exists():
        shutil.rmtree(blobs)
    shutil.copytree(source / BLOBS_DIR, blobs)
    count = sum(1 for p in blobs.rglob("*") if p.is_file())
    return BackupSummary(source, count, database.stat().st_size)

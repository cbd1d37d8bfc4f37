"""What every role stands on: the database at this code's schema, the keyring, the
master-key provider and tenant keys, the sealed documents and the audit log."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from ocrvault.audit import AuditLog, ChainSigner
from ocrvault.clock import Clock, utcnow
from ocrvault.config import Settings
from ocrvault.crypto import Keyring, load_keyring
from ocrvault.crypto.master import open_tenant_keys
from ocrvault.datadir import keyring_beside_data, prepare_data_dir
from ocrvault.ingest.sandbox import Sandbox
from ocrvault.memory import limit_heaps
from ocrvault.store.blobs import BlobStore, open_blob_store
from ocrvault.store.db import Database
from ocrvault.store.documents import SealedDocuments

log = logging.getLogger(__name__)


def make_sandbox(settings: Settings, size: int) -> Sandbox:
    """The decode sandbox with ``size`` children, under the settings' limits."""
    return Sandbox(memory_bytes=settings.decode_memory_bytes,
                   cpu_seconds=settings.decode_cpu_seconds,
                   timeout_seconds=settings.decode_timeout_seconds, size=size)


def open_database(settings: Settings, *, migrate: bool) -> Database:
    """The database, migrated to this code's schema if ``migrate``, else checked to be at
    it (SchemaNotCurrent otherwise, naming `ocrvault migrate`)."""
    db = Database(settings.resolved_database_url)
    try:
        if migrate:
            db.migrate()
        else:
            db.check_schema()
    except BaseException:
        db.dispose()
        raise
    return db


@dataclass
class Foundation:
    settings: Settings
    db: Database
    keyring: Keyring
    documents: SealedDocuments
    audit: AuditLog
    clock: Clock

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool, clock: Clock = utcnow,
             blobs: BlobStore | None = None) -> Foundation:
        """Sets the process umask to 077 (see datadir.py) and raises UnsafeDataDir for a
        data dir that others may read, SchemaNotCurrent for a database at another schema."""
        prepare_data_dir(settings.data_dir)  # first: it sets the umask for all that follows
        limit_heaps()  # before any thread of the role starts (memory.py)
        db = open_database(settings, migrate=migrate)
        try:
            keyring = load_keyring(settings)
        except BaseException:
            db.dispose()
            raise
        if keyring_beside_data(settings):
            log.warning(
                "the keyring %s is inside the data dir: a copy of the data dir (a backup, a "
                "snapshot, a stolen disk) holds the documents and the keys that open them. Set "
                "OCRVAULT_KEYRING_PATH to a file elsewhere, or OCRVAULT_MASTER_KEY",
                settings.keyring_path)
        documents = SealedDocuments(blobs or open_blob_store(settings), keyring,
                                    open_tenant_keys(settings, keyring))
        audit = AuditLog(db, ChainSigner(keyring), clock,
                         timedelta(days=settings.audit_retention_days))
        return cls(settings, db, keyring, documents, audit, clock)

    def close(self) -> None:
        self.db.dispose()


class OnFoundation:
    """The foundation's parts by name, for a composition that holds one as ``base``."""

    base: Foundation

    @property
    def settings(self) -> Settings:
        return self.base.settings

    @property
    def db(self) -> Database:
        return self.base.db

    @property
    def keyring(self) -> Keyring:
        return self.base.keyring

    @property
    def documents(self) -> SealedDocuments:
        return self.base.documents

    @property
    def audit(self) -> AuditLog:
        return self.base.audit

    @property
    def clock(self) -> Clock:
        return self.base.clock

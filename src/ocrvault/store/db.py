"""The database handle: engine, sessions, schema migration, and the check that a node's
code and the database's schema agree before the node starts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from ocrvault.errors import ErrorCode, OcrVaultError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The advisory lock that serialises migrations on one PostgreSQL database (any fixed number;
# this one spells "ocrv" in ASCII). Held per database, so other schemas on it wait too.
MIGRATION_LOCK = 0x6F637276

# What Database.transaction() hands out, named for callers that join one (the audit log).
Transaction = Session


class SchemaNotCurrent(OcrVaultError):
    """The database's schema is not the one this code was written for; the message says
    what to run. A node refuses to start on it rather than fail on its first query."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.INTERNAL_ERROR, detail)


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def code_revisions() -> frozenset[str]:
    """The schema revisions this code was written for (its migrations' heads)."""
    return frozenset(ScriptDirectory.from_config(_config()).get_heads())


def _shown(revisions: frozenset[str]) -> str:
    return "+".join(sorted(revisions)) or "none"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets API threads read while a worker writes; secure_delete overwrites freed
    # pages so that a deleted row's bytes do not linger in the file.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def engine_url(url: str) -> URL:
    """``url`` with the driver ocrvault ships: a bare ``postgresql://`` means psycopg 3
    (SQLAlchemy alone would pick psycopg2, which is not a dependency)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        parsed = engine_url(url)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        connect_args: dict[str, Any] = {"check_same_thread": False} if is_sqlite else {}
        self.engine: Engine = create_engine(parsed, connect_args=connect_args,
                                            pool_pre_ping=True)
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def schema_revisions(self) -> frozenset[str]:
        """The revisions the database's schema is at; empty for a database never migrated."""
        with self.engine.connect() as connection:
            return frozenset(MigrationContext.configure(connection).get_current_heads())

    def check_schema(self) -> None:
        """Raise SchemaNotCurrent unless the schema is exactly at this code's revision."""
        current, wanted = self.schema_revisions(), code_revisions()
        if current == wanted:
            return
        if not current:
            raise SchemaNotCurrent(
                f"the database has no ocrvault schema yet (this code needs revision "
                f"{_shown(wanted)}): run `ocrvault migrate` once, then start this node")
        self._refuse_newer(current, wanted)
        raise SchemaNotCurrent(
            f"the database's schema is at revision {_shown(current)}, this code needs "
            f"{_shown(wanted)}: run `ocrvault migrate` once, then start this node")

    @staticmethod
    def _refuse_newer(current: frozenset[str], wanted: frozenset[str]) -> None:
        script = ScriptDirectory.from_config(_config())
        unknown = {revision for revision in current
                   if revision not in {s.revision for s in script.walk_revisions()}}
        if unknown:
            raise SchemaNotCurrent(
                f"the database's schema is at revision {_shown(frozenset(unknown))}, newer "
                f"than this code (which knows up to {_shown(wanted)}): a newer ocrvault ran "
                "`ocrvault migrate` on it; run that version on this node")

    def migrate(self) -> tuple[frozenset[str], frozenset[str]]:
        """Bring the schema to this code's revision (idempotent); returns the revisions it
        was at and is at now. A schema newer than the code is refused (SchemaNotCurrent)."""
        before = self.schema_revisions()
        self._refuse_newer(before, code_revisions())
        config = _config()
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return before, self.schema_revisions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def rolled_back(self) -> Iterator[Session]:
        """A session inside one transaction that is rolled back however the block ends:
        what runs in it leaves nothing (jobs/rehearsal.py)."""
        with self._sessions() as session:
            session.begin()
            try:
                yield session
            finally:
                session.rollback()

    def scrub(self) -> None:
        """Make deleted rows' bytes leave the files, not just the live tables.

        ``secure_delete`` zeroes freed space in the database file, but the WAL still
        holds older copies of changed pages until a checkpoint; TRUNCATE copies them
        back and empties the WAL. A no-op on servers (PostgreSQL vacuums on its own).
        """
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()

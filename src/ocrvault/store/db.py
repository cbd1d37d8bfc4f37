"""The database handle: engine, sessions, and schema migration at start-up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The advisory lock that serialises migrations on one PostgreSQL database (any fixed number;
# this one spells "ocrv" in ASCII). Held per database, so other schemas on it wait too.
MIGRATION_LOCK = 0x6F637276

# What Database.transaction() hands out, named for callers that join one (the audit log).
Transaction = Session


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

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent).

        On PostgreSQL, nodes that start together take turns: each holds a transaction-scoped
        advisory lock while it reads the version and migrates, so the second finds the
        schema current instead of creating the same tables again.
        """
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

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

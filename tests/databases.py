"""Where a test's database lives: SQLite in its data dir, or its own PostgreSQL schema.

Every test that opens a database gets it through :class:`TestDatabases` (the ``databases``
and ``module_databases`` fixtures in conftest.py). By default that is the embedded SQLite
file in the data dir, exactly as ``ocrvault serve`` makes it. With
``OCRVAULT_TEST_DATABASE_URL`` set (``make test-postgres``), each data dir gets a fresh
schema on that server instead, created on first use and dropped when the fixture's scope
ends, so tests stay isolated and run in any order. The schema is chosen through the URL
(``options=-csearch_path=...``, read by libpq), so the app under test does not know.

One data dir, one schema: a test that restarts a runtime on the same data dir finds the
same rows, as it would find the same SQLite file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, create_engine, inspect, make_url, text
from sqlalchemy.pool import NullPool

from ocrvault.config import Settings
from ocrvault.store.db import Database, engine_url

TEST_DATABASE_URL = os.environ.get("OCRVAULT_TEST_DATABASE_URL") or None
ON_POSTGRES = TEST_DATABASE_URL is not None
# Private to this project's tests on a server that others share: never collides with
# another application's schemas, and stale ones from a killed run are easy to find.
SCHEMA_PREFIX = "ocrvault_test_"
# A schema whose connections are still busy must fail its test, not hang the run.
DROP_LOCK_TIMEOUT = "10s"

_admin: Engine | None = None


def admin_engine() -> Engine:
    """The connection that creates and drops schemas (not the app's: NullPool, no search_path)."""
    global _admin
    if TEST_DATABASE_URL is None:
        raise RuntimeError("OCRVAULT_TEST_DATABASE_URL is not set")
    if _admin is None:
        _admin = create_engine(engine_url(TEST_DATABASE_URL), poolclass=NullPool)
    return _admin


def schema_url(schema: str) -> str:
    """The test server's URL, with ``schema`` first on every connection's search_path."""
    assert TEST_DATABASE_URL is not None
    url = make_url(TEST_DATABASE_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


class TestDatabases:
    """The databases of one fixture scope; :meth:`close` drops the PostgreSQL schemas."""

    __test__ = False  # a helper, not a test class

    def __init__(self) -> None:
        self._schemas: dict[Path, str] = {}
        self._opened: list[Database] = []

    def url(self, data_dir: Path) -> str:
        """The database URL for ``data_dir``: its SQLite file, or its schema."""
        if not ON_POSTGRES:
            return Settings(data_dir=data_dir).resolved_database_url
        key = data_dir.resolve()
        if key not in self._schemas:
            schema = f"{SCHEMA_PREFIX}{uuid.uuid4().hex[:16]}"
            with admin_engine().begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            self._schemas[key] = schema
        return schema_url(self._schemas[key])

    def open(self, data_dir: Path, *, migrated: bool = True) -> Database:
        """The app's handle on ``data_dir``'s database (migrated to this code's schema unless
        told not to), disposed when this scope ends, before its schema is dropped."""
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        database = Database(self.url(data_dir))
        self._opened.append(database)
        if migrated:
            database.migrate()
        return database

    def values(self, data_dir: Path) -> dict[str, Any]:
        """The settings that put ``data_dir``'s database where this run wants it: none for
        SQLite (the app's default file), ``database_url`` of its schema on PostgreSQL."""
        return {"database_url": self.url(data_dir)} if ON_POSTGRES else {}

    def settings(self, data_dir: Path, **values: Any) -> Settings:
        """Settings on ``data_dir`` (and, on the PostgreSQL run, its schema)."""
        return Settings(data_dir=data_dir, **{**self.values(data_dir), **values})

    def env(self, data_dir: Path) -> dict[str, str]:
        """The environment for a CLI or a server process on ``data_dir``."""
        environment = {"OCRVAULT_DATA_DIR": str(data_dir)}
        if ON_POSTGRES:
            environment["OCRVAULT_DATABASE_URL"] = self.url(data_dir)
        return environment

    def execute(self, data_dir: Path, statement: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run ``statement`` on ``data_dir``'s database behind the app's back (as a tamperer
        would); the rows it returns, if any."""
        engine = create_engine(engine_url(self.url(data_dir)), poolclass=NullPool)
        try:
            with engine.begin() as connection:
                result = connection.execute(text(statement), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()

    def contents(self, data_dir: Path) -> bytes:
        """Every value of every live row in ``data_dir``'s database, as bytes to search: on
        PostgreSQL, what a scan of the data dir cannot see (its files are the server's)."""
        engine = create_engine(engine_url(self.url(data_dir)), poolclass=NullPool)
        found: list[bytes] = []
        try:
            with engine.connect() as connection:
                for table in inspect(connection).get_table_names():
                    for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                        found += [value if isinstance(value, bytes) else str(value).encode()
                                  for value in row]
        finally:
            engine.dispose()
        return b"\0".join(found)

    def created(self, data_dir: Path) -> bool:
        """Whether the app made its database for ``data_dir``: the SQLite file, or a table in
        the schema (the schema itself is made by these tests, before the app runs)."""
        if not ON_POSTGRES:
            return (data_dir / "ocrvault.db").exists()
        [(tables,)] = self.execute(data_dir, "SELECT count(*) FROM information_schema.tables "
                                             "WHERE table_schema = current_schema()")
        return bool(tables)

    def close(self) -> None:
        for database in self._opened:
            database.dispose()
        self._opened = []
        schemas, self._schemas = list(self._schemas.values()), {}
        if not schemas:
            return
        with admin_engine().begin() as connection:
            connection.execute(text(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"))
            for schema in schemas:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))

    def __enter__(self) -> TestDatabases:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def postgres_unreachable() -> str | None:
    """Why the test server cannot be used, or None when it can (or none is asked for)."""
    if not ON_POSTGRES:
        return None
    try:
        with admin_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        return f"PostgreSQL at {make_url(TEST_DATABASE_URL or '')!r} unreachable: {error}"
    return None

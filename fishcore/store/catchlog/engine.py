"""The catch log's databases: one SQLAlchemy engine per URL per process (SQLite with WAL, or PostgreSQL through
psycopg 3), the schema migrated with Alembic (migrations/versions), and what counts as "the database is away"."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD = "0007"


_ENGINES: dict[str, Any] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(url: str):
    """One engine per URL per process (a pool that sessions and threads share)."""
    from sqlalchemy import create_engine, event

    with _ENGINES_LOCK:
        if url not in _ENGINES:
            if url.startswith("sqlite"):
                engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

                @event.listens_for(engine, "connect")
                def _pragmas(dbapi_connection, _record) -> None:
                    cursor = dbapi_connection.cursor()
                    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
                    cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: a killed app loses no committed entry
                    cursor.execute("PRAGMA foreign_keys=ON")
                    cursor.execute("PRAGMA busy_timeout=30000")
                    cursor.close()

            else:
                engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
            _ENGINES[url] = engine
        return _ENGINES[url]


def dispose_engines() -> None:
    """Close every pooled connection (tests that stop a server, a process about to fork)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at url to ``revision`` of the catch log's schema (made if empty)."""
    from alembic import command
    from alembic.config import Config

    engine = engine_for(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def schema_version(url: str) -> str | None:
    """The Alembic revision the database is at (None: not a catch log yet)."""
    from alembic.runtime.migration import MigrationContext

    with engine_for(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def insert_ignore(connection, table, values: dict) -> bool:
    """Insert a row unless one with the same key is there (the database decides: ON CONFLICT DO NOTHING, so two
    writers racing on one key both succeed and the row is there once); True when this call inserted it."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    key = next(iter(table.primary_key.columns))
    statement = insert(table).values(**values).on_conflict_do_nothing().returning(key)  # rowcount is -1 on psycopg
    return connection.execute(statement).first() is not None


def _contended(exc: BaseException) -> bool:
    """A write that lost a race and may simply be tried again: SQLite's lock or snapshot (a transaction that read
    before another writer committed), PostgreSQL's serialisation failure or deadlock, any unique-key conflict."""
    from sqlalchemy.exc import DBAPIError, IntegrityError

    if isinstance(exc, IntegrityError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text or getattr(exc.orig, "sqlstate", "") in ("40001", "40P01")


def write(engine, work, attempts: int = 8):
    """Run ``work(connection)`` in one transaction, again (from the start) when it lost a race with another
    writer; its result. A repeat of a request never turns into an error because the first copy is being written."""
    import random
    import time

    for attempt in range(attempts):
        try:
            with engine.begin() as connection:
                return work(connection)
        except Exception as exc:
            if attempt == attempts - 1 or not _contended(exc):
                raise
            time.sleep(0.02 * (2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def unreachable(exc: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, OperationalError

    if _contended(exc):  # a lost race (SQLite's "database is locked"), not a database that is away
        return False
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

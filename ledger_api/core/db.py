"""Database engine, sessions and migrations (SQLite by default, PostgreSQL by DATABASE_URL).

Why a function per concern and no module-level engine: each node (and each test) owns its
engine through the app state; nothing global.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, create_engine

from ledger_api.errors import DatabaseUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
#: Integer columns are 32-bit in PostgreSQL: ids, sequences and versions from clients are bounded
#: by this, so an absurd number is a 422, never a database overflow.
DB_INT_MAX = 2**31 - 1


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for in-memory SQLite and for other databases."""
    path = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
    return Path(path) if path and path != ":memory:" else None


def sqlite_companion(url: str, suffix: str) -> Path | None:
    """A file beside a SQLite database file (``<database><suffix>``); None where there is no file."""
    database = sqlite_file(url)
    return database.with_name(database.name + suffix) if database is not None else None


def as_utc(moment: datetime) -> datetime:
    """A datetime read back from the database, in UTC: SQLite returns them without their zone (every one
    we store is UTC); PostgreSQL returns them zoned."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def checkpoint(engine: Engine) -> None:
    """SQLite: copies the write-ahead log into the database and truncates it, so what was just deleted
    does not linger in the log (best effort: readers may hold it; a later checkpoint finishes it).
    Defence in depth only: erased key material is sealed under a key the vault has destroyed."""
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except OperationalError:
        pass


def make_engine(url: str) -> Engine:
    """An engine with safe defaults: SQLite in WAL mode with a busy timeout; pooled PostgreSQL with pre-ping."""
    if url.startswith("sqlite"):
        if (path := sqlite_file(url)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args={"connect_timeout": 5})


class WriteTurns:
    """Takes turns for write transactions on one SQLite file, across threads and processes.

    Why: SQLite admits one writer at a time, and a writer that finds the database locked sleeps in
    growing steps (1, 2, 5, 10 ... 100 ms) before trying again. With several API processes writing
    a nonce per request and an access entry per release, those sleeps made the slowest 1-2 % of
    fetches 50-130 ms. Waiting here instead (a thread lock, then an ``flock`` on a file beside the
    database) wakes the next writer as soon as the last one commits. PostgreSQL needs none of this.
    """

    def __init__(self, url: str) -> None:
        self._path = sqlite_companion(url, ".write-turns")
        self._lock = threading.Lock()
        self._fd: int | None = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        if self._path is None:
            yield
            return
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Brings the schema to the newest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on error; outages become 503."""
    with _outages_unavailable(), Session(engine, expire_on_commit=False) as session:
        yield session
        session.commit()


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A plain connection in one transaction, for the per-request statements of the hot path.

    Why beside ``session_scope``: the ORM's unit of work (identity map, flush planning, object
    construction) cost more CPU than everything else in a consent-checked fetch; a signed
    request's nonce needs one INSERT, not a session. Same commit/rollback and 503 rules.
    """
    with _outages_unavailable(), engine.begin() as connection:
        yield connection


@contextmanager
def _outages_unavailable() -> Iterator[None]:
    try:
        yield
    except (OperationalError, DBAPIError) as exc:
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            raise DatabaseUnavailable(f"database unavailable: {type(exc.orig).__name__}") from None
        raise


def ping(engine: Engine) -> None:
    """Raises ``DatabaseUnavailable`` if the database does not answer."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        raise DatabaseUnavailable(f"database unavailable: {type(exc.orig).__name__}") from None

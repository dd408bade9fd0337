"""Database engine, sessions and migrations (SQLite by default, PostgreSQL by DATABASE_URL).

Why a function per concern and no module-level engine: each node (and each test) owns its
engine through the app state; nothing global.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, create_engine

from ledger_api.errors import DatabaseUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
#: Integer columns are 32-bit in PostgreSQL: ids, sequences and versions from clients are bounded
#: by this, so an absurd number is a 422, never a database overflow.
DB_INT_MAX = 2**31 - 1


def make_engine(url: str) -> Engine:
    """An engine with safe defaults: SQLite in WAL mode with a busy timeout; pooled PostgreSQL with pre-ping."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                         connect_args={"connect_timeout": 5})  # fmt: skip


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
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
            session.commit()
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

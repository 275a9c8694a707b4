"""Connecting to the database: embedded SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from kiosk.errors import ArtBoothError, ExitCode
from kiosk.settings import SettingsError

DATABASE_FILE = "artbooth.db"

# Drivers we ship, by the URL schemes people write (`postgres://` is what many hosting panels hand out).
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}

# A start that waits a minute on an unreachable server looks like a hang; fail soon and say why.
CONNECT_TIMEOUT_S = 10
# How long a SQLite writer waits for another's lock; writes take milliseconds, migrations longer.
SQLITE_BUSY_TIMEOUT_S = 30
# How long a request waits for a pooled connection. While connecting fails, SQLAlchemy does not wake
# the requests queued behind the failed attempts: they wait this long before their 503, so keep it short.
POOL_TIMEOUT_S = 10


class DatabaseUnavailableError(ArtBoothError):
    """The database cannot be reached or opened (server down, wrong credentials, unwritable file)."""

    exit_code = ExitCode.DATABASE_UNAVAILABLE


def database_url(data_dir: Path, url_setting: str) -> str:
    """The async SQLAlchemy URL to use: ``url_setting`` when given, else SQLite at ``<data_dir>/artbooth.db``."""
    if not url_setting.strip():
        path = Path(data_dir).expanduser().absolute() / DATABASE_FILE
        return URL.create("sqlite+aiosqlite", database=str(path)).render_as_string(hide_password=False)
    try:
        url = make_url(url_setting.strip())
    except ArgumentError:
        raise SettingsError(f"database_url is not a database URL: {masked_url(url_setting)}") from None
    driver = _ASYNC_DRIVERS.get(url.drivername)
    if driver is None:
        raise SettingsError(f"database_url must be a sqlite:// or postgresql:// URL, not {url.drivername}://")
    return url.set(drivername=driver).render_as_string(hide_password=False)


def create_engine(url: str) -> AsyncEngine:
    """An engine for ``url`` (from database_url); SQLite gets foreign keys and write-ahead logging turned on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(
            parsed, pool_timeout=POOL_TIMEOUT_S, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}
        )
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    # Pre-ping: a long-running kiosk outlives database restarts and idle-connection reaping.
    return create_async_engine(
        parsed, pool_pre_ping=True, pool_timeout=POOL_TIMEOUT_S, connect_args={"timeout": CONNECT_TIMEOUT_S}
    )


def _configure_sqlite(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    try:
        # Off by default in SQLite; without it ON DELETE CASCADE and every foreign key are ignored.
        cursor.execute("PRAGMA foreign_keys = ON")
        # Readers (downloads) no longer wait for writers (compositions being saved). The mode is
        # stored in the file, so only the first connection ever switches it.
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone()[0].lower() != "wal":
            _switch_to_wal(cursor)
    finally:
        cursor.close()


def _switch_to_wal(cursor) -> None:  # noqa: ANN001 - sqlite3's cursor or the aiosqlite adapter's
    # Switching needs the file to itself and SQLite does not call the busy handler for it, so two
    # first connections at once (two upgrades racing on a fresh file) would fail without a retry.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:  # sqlite3.OperationalError, or the adapter's wrapper of it
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Results outlive their sessions as plain values; nothing should reload after commit.
    return async_sessionmaker(engine, expire_on_commit=False)


async def check_database(engine: AsyncEngine) -> None:
    """Raise DatabaseUnavailableError, with the reason in one line, unless a trivial query succeeds.

    A SQLite database's folder is made here, so a fresh data_dir works and an unwritable one is reported.
    """
    try:
        if engine.dialect.name == "sqlite":
            # Tried with the standard driver first: aiosqlite leaves the worker thread of a failed
            # open to stop on its own, and one that outlives the event loop prints a traceback
            # under the CLI's error message (omnilib/aiosqlite#389).
            await asyncio.to_thread(_open_sqlite, engine.url.database)
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (TimeoutError, SQLAlchemyError, OSError, sqlite3.Error) as exc:
        raise unavailable(engine.url, exc) from exc


def _open_sqlite(database: str | None) -> None:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(database or ":memory:", timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        _configure_sqlite(connection, None)
    finally:
        connection.close()


def unavailable(url: URL | str, exc: BaseException) -> DatabaseUnavailableError:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return DatabaseUnavailableError(
        f"cannot use the database {masked_url(url)}: {reason[0] if reason else type(exc).__name__}"
    )


def masked_url(url: URL | str) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"

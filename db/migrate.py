"""Bringing a database's schema up to date with Alembic, from code (no alembic.ini needed at run time)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from db.engine import check_database, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any fixed number: it names the PostgreSQL advisory lock that serialises upgrades.
_UPGRADE_LOCK_KEY = 0x4172_7442_6F6F_7468  # "ArtBooth"


def alembic_config() -> Config:
    config = Config()
    # ConfigParser interpolation: a '%' in the install path would otherwise be read as a reference.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


async def upgrade(url: str) -> None:
    """Apply every pending migration to the database at ``url`` (a no-op when it is up to date).

    Raises DatabaseUnavailableError when the database cannot be reached; a failing migration
    raises its own error, as that is a bug rather than an environment problem.
    """
    engine = create_engine(url)
    try:
        await check_database(engine)
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to_head, alembic_config())
    finally:
        await engine.dispose()


def _upgrade_to_head(connection: Connection, config: Config) -> None:
    # Two upgrades at once (kiosks sharing a server starting together, the CLI racing the service):
    # the second waits here for the first to commit, then finds nothing to do.
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch migrations rebuild a table (copy, drop, rename); with foreign keys on, dropping
        # `photos` would cascade into download_links. SQLite's advice: keys off while the schema
        # changes (only outside a transaction, and this engine is disposed after), checked before commit.
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
        # The driver would begin the transaction only at the first write, after the version was read.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY})
    # env.py migrates over this connection instead of opening its own.
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    if sqlite:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            raise RuntimeError(f"a migration left rows with dangling foreign keys: {broken[:5]}")

"""Alembic environment: migrates over the connection db.migrate hands in, or (for the `alembic`
command line that developers use to write revisions, see alembic.ini) over a fresh one."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from db.engine import create_engine
from db.models import Base


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_on_own_connection(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")

given = context.config.attributes.get("connection")
if given is not None:
    run_migrations(given)
else:
    asyncio.run(run_migrations_on_own_connection(context.config.get_main_option("sqlalchemy.url", "")))

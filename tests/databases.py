"""Scratch PostgreSQL databases for tests and benches (no pytest here: bench/scale.py uses it too)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from db.engine import database_url

# A postgresql:// URL of a role allowed to CREATE DATABASE: the storage tests then also run on PostgreSQL.
POSTGRES_ENV = "ARTBOOTH_TEST_POSTGRES_URL"


@asynccontextmanager
async def scratch_postgres_database(server_url: str) -> AsyncIterator[str]:
    """A fresh, empty database on the server, dropped afterwards (FORCE: a killed node's connections)."""
    admin_url = make_url(database_url(Path("."), server_url))
    name = f"artbooth_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:  # a failed test's database too
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()

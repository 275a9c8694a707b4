"""Dashboard settings changed on one serve node reach every node (PostgreSQL only).

A change is stored and announced with ``NOTIFY artbooth_settings`` in one transaction
(db/overrides.py), so a node hears of it exactly when it can read it. Every node keeps one asyncpg
connection that LISTENs and, on each notification and after each (re)connect, calls back to
reload the settings: a change made while the connection was down is caught up on reconnect.
The connection is checked now and then, and reopened with growing pauses when it drops; the
service goes on with the settings it has meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy.engine import URL

from db.engine import masked_url

log = logging.getLogger(__name__)

SETTINGS_CHANNEL = "artbooth_settings"
# A silently dropped connection (a cut network, no reset) shows only when used: checked this often.
CHECK_EVERY_S = 10.0
CHECK_TIMEOUT_S = 5.0
FIRST_RETRY_S = 0.5


def asyncpg_dsn(url: URL) -> str:
    """The engine's SQLAlchemy URL (postgresql+asyncpg://...) as asyncpg's own DSN (postgresql://...)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class SettingsListener:
    """Calls ``reload`` after every settings change any node stores, until cancelled (``run``)."""

    def __init__(
        self, url: URL, reload: Callable[[], Awaitable[None]], *, node: str, max_retry_s: float
    ) -> None:
        self._url = url
        self._reload = reload
        # Names the connection in pg_stat_activity, so an operator (or a test) can find it.
        self.application_name = f"artbooth settings {node}"[:63]
        self._max_retry_s = max_retry_s
        self._listening = False

    async def run(self) -> None:
        retry_s = FIRST_RETRY_S
        while True:
            self._listening = False
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever broke, the service keeps running and tries again
                if self._listening:
                    retry_s = FIRST_RETRY_S  # it had worked: a new outage starts the pauses afresh
                log.warning(
                    "settings changes from other nodes are not heard (%s: %s); reconnecting to %s in %.1f s",
                    type(exc).__name__, exc, masked_url(self._url), retry_s,
                )
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, self._max_retry_s)

    async def _listen(self) -> None:
        """Listen until the connection fails (the exception says how)."""
        wake = asyncio.Event()
        connection = await asyncpg.connect(
            asyncpg_dsn(self._url), timeout=CHECK_TIMEOUT_S, server_settings={"application_name": self.application_name}
        )
        try:
            connection.add_termination_listener(lambda _: wake.set())
            await connection.add_listener(SETTINGS_CHANNEL, lambda *_: wake.set())
            self._listening = True
            log.info("listening for settings changes from other nodes")
            wake.set()  # catch up on whatever changed while this node was not listening
            while True:
                try:
                    await asyncio.wait_for(wake.wait(), CHECK_EVERY_S)
                except TimeoutError:
                    await connection.execute("SELECT 1", timeout=CHECK_TIMEOUT_S)
                    continue
                wake.clear()
                if connection.is_closed():
                    raise ConnectionError("the database closed the connection")
                await self._reload()
        finally:
            if connection.is_closed():
                connection.terminate()
            else:
                await _close(connection)


async def _close(connection: asyncpg.Connection) -> None:
    try:
        await connection.close(timeout=CHECK_TIMEOUT_S)
    except Exception:
        connection.terminate()

"""What one process announces to the others through PostgreSQL (LISTEN/NOTIFY).

Dashboard settings changed on one serve node reach every node: a change is stored and announced
with ``NOTIFY artbooth_settings`` in one transaction (db/overrides.py), so a node hears of it
exactly when it can read it. Queued compositions are announced on ``artbooth_captures`` by the
worker that finished them (db/capture_jobs.py), to the node waiting for them.

A listener keeps one asyncpg connection that LISTENs and, on each batch of notifications and after
each (re)connect, calls back with the payloads (none after a connect: catch up on whatever happened
while the connection was down). The connection is checked now and then, and reopened with growing
pauses when it drops; the service goes on meanwhile (settings as they were; waits poll).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import masked_url

log = logging.getLogger(__name__)

SETTINGS_CHANNEL = "artbooth_settings"
# A silently dropped connection (a cut network, no reset) shows only when used: checked this often.
CHECK_EVERY_S = 10.0
CHECK_TIMEOUT_S = 5.0
FIRST_RETRY_S = 0.5


async def announce(session: AsyncSession, channel: str, payload: str = "") -> None:
    """``NOTIFY channel`` in the session's transaction: every listener hears of it when it commits,
    exactly when it can read what the transaction wrote."""
    await session.execute(select(func.pg_notify(channel, payload)))


def asyncpg_dsn(url: URL) -> str:
    """The engine's SQLAlchemy URL (postgresql+asyncpg://...) as asyncpg's own DSN (postgresql://...)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class NotificationListener:
    """Calls ``heard`` with the payloads of the notifications on ``channel``, and with none after each
    (re)connect, until cancelled (``run``)."""

    def __init__(
        self,
        url: URL,
        channel: str,
        heard: Callable[[list[str]], Awaitable[None]],
        *,
        name: str,
        max_retry_s: float,
    ) -> None:
        self._url = url
        self._channel = channel
        self._heard = heard
        # Names the connection in pg_stat_activity, so an operator (or a test) can find it.
        self.application_name = f"artbooth {name}"[:63]
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
                    "%s is not heard (%s: %s); reconnecting to %s in %.1f s",
                    self._channel, type(exc).__name__, exc, masked_url(self._url), retry_s,
                )
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, self._max_retry_s)

    async def _listen(self) -> None:
        """Listen until the connection fails (the exception says how)."""
        wake = asyncio.Event()
        payloads: list[str] = []

        def notified(_connection, _pid, _channel, payload: str) -> None:
            payloads.append(payload)
            wake.set()

        connection = await asyncpg.connect(
            asyncpg_dsn(self._url), timeout=CHECK_TIMEOUT_S, server_settings={"application_name": self.application_name}
        )
        try:
            connection.add_termination_listener(lambda _: wake.set())
            await connection.add_listener(self._channel, notified)
            self._listening = True
            log.info("listening on %s", self._channel)
            wake.set()  # catch up on whatever happened while this process was not listening
            while True:
                try:
                    await asyncio.wait_for(wake.wait(), CHECK_EVERY_S)
                except TimeoutError:
                    await connection.execute("SELECT 1", timeout=CHECK_TIMEOUT_S)
                    continue
                wake.clear()
                if connection.is_closed():
                    raise ConnectionError("the database closed the connection")
                heard, payloads[:] = list(payloads), []
                await self._heard(heard)
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

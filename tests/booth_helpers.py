"""Booths as the tests need them: registered as staff register them, paired through the real
pairing link as a booth's screen is (web/kiosk.py), and aiohttp clients that act as that screen."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import aiohttp
from aiohttp.test_utils import TestServer
from yarl import URL

from db import booths, service
from db.service import SessionFactory
from kiosk.auth import new_token, token_digest
from kiosk.errors import KioskExistsError
from web.keys import STORAGE_KEY
from web.kiosk import BOOTH_COOKIE, BOOTH_HEADER

_PAIR_FORM = re.compile(r'<form method="post" action="([^"]+)">\s*<input type="hidden" name="code" value="([^"]+)">')


async def registered_kiosk(
    sessions: SessionFactory, kiosk_id: str, *, name: str = "", location: str = "", seen: datetime | None = None
) -> None:
    """The kiosk registered as staff do (kept as it is when it exists), checked in at ``seen`` if given."""
    now = datetime.now(timezone.utc)
    try:
        await service.register_kiosk(sessions, kiosk_id, name=name, location=location, actor="test", now=now)
    except KioskExistsError:
        pass
    if seen is not None:
        await booths.note_seen(sessions, kiosk_id, now=seen)


async def pairing_link(server: TestServer, kiosk_id: str, *, name: str = "") -> str:
    """A fresh one-time pairing link for the kiosk (registered first if needed), as staff get it
    from "Pair this booth" on the Kiosks page."""
    return await pairing_link_at(server.app[STORAGE_KEY].sessions, server.make_url("/"), kiosk_id, name=name)


async def pairing_link_at(sessions: SessionFactory, base: URL, kiosk_id: str, *, name: str = "") -> str:
    """pairing_link for a service in another process: its database (``sessions``) and address (``base``)."""
    await registered_kiosk(sessions, kiosk_id, name=name)
    code, now = new_token(), datetime.now(timezone.utc)
    await booths.start_pairing(
        sessions, kiosk_id, code_hash=token_digest(code), expires_at=now + timedelta(minutes=10), actor="test", now=now
    )
    return str(base.join(URL(f"/kiosk/{kiosk_id}/pair")).with_query(code=code))


def booth_client() -> aiohttp.ClientSession:
    """A client that sends what kiosk.js sends: its cookies and the booth header."""
    # unsafe: keep cookies for 127.0.0.1, as a browser does.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers={BOOTH_HEADER: "1"})


async def pair(client: aiohttp.ClientSession, link: str) -> None:
    """Open the pairing link and confirm it, as staff do on the booth's screen."""
    async with client.get(link) as response:
        assert response.status == 200, await response.text()
        action, code = _PAIR_FORM.search(await response.text()).groups()
    async with client.post(response.url.join(URL(action)), data={"code": code}, allow_redirects=False) as response:
        assert response.status == 303, await response.text()


async def paired_booth(server: TestServer, kiosk_id: str, *, name: str = "") -> aiohttp.ClientSession:
    """A booth_client paired with the kiosk (registered first if needed); the caller closes it."""
    client = booth_client()
    try:
        await pair(client, await pairing_link(server, kiosk_id, name=name))
    except BaseException:
        await client.close()
        raise
    return client


def credential_of(client: aiohttp.ClientSession, server: TestServer, kiosk_id: str) -> str:
    """The booth credential the client's cookie jar holds for the kiosk."""
    return client.cookie_jar.filter_cookies(server.make_url(f"/api/kiosks/{kiosk_id}/stats"))[BOOTH_COOKIE].value

"""What the API tests share: staff users with cheap password hashes, signing in as a browser does,
and API tokens made the way an administrator makes them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import aiohttp
from aiohttp.test_utils import TestServer

from db import api_tokens, staff
from db.models import StaffRole
from db.service import SessionFactory
from kiosk.auth import Passwords
from kiosk.settings import Settings
from servers import running
from web.keys import STORAGE_KEY

# Cheap hashes keep sign-ins fast; the defaults are tested by the staff tests.
CHEAP_HASHES = {"ARTBOOTH_PASSWORD_HASH_MEMORY_MIB": "8", "ARTBOOTH_PASSWORD_HASH_TIME_COST": "1"}
ADMIN = ("ada", "ada's long passphrase")
OPERATOR = ("otto", "otto's long passphrase")
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]{43})"')


async def add_staff(server: TestServer) -> None:
    """The administrator ADMIN and the operator OPERATOR."""
    await add_staff_to(server.app[STORAGE_KEY].sessions)


async def add_staff_to(sessions: SessionFactory) -> None:
    """add_staff for a service in another process: its database."""
    passwords = Passwords(memory_mib=8, time_cost=1)
    for (name, password), role in ((ADMIN, StaffRole.ADMIN), (OPERATOR, StaffRole.OPERATOR)):
        await staff.create_user(
            sessions, username=name, password_hash=passwords.hash(password), role=role, actor="test",
            now=datetime.now(timezone.utc),
        )


@asynccontextmanager
async def running_with_staff(settings: Settings, app=None) -> AsyncIterator[TestServer]:
    """The service (or ``app``) on loopback, with the staff users of add_staff."""
    async with running(settings, app) as server:
        await add_staff(server)
        yield server


def browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # unsafe: cookies for 127.0.0.1


async def sign_in(browser: aiohttp.ClientSession, server: TestServer, user: tuple[str, str]) -> str:
    """Sign in through the form; returns the session's CSRF token (as /api/v1/me hands it to scripts)."""
    async with browser.get(server.make_url("/staff/login")) as response:
        token = _CSRF_FIELD.search(await response.text()).group(1)
    form = {"csrf_token": token, "username": user[0], "password": user[1]}
    async with browser.post(server.make_url("/staff/login"), data=form, allow_redirects=False) as response:
        assert response.status == 303, await response.text()
    async with browser.get(server.make_url("/api/v1/me")) as response:
        assert response.status == 200
        return (await response.json())["csrf_token"]


async def new_token(server: TestServer, *scopes: str, name: str = "test integration", expires_at=None) -> str:
    created = await api_tokens.create_token(
        server.app[STORAGE_KEY].sessions,
        name=name,
        scopes=scopes or api_tokens.SCOPES,
        expires_at=expires_at,
        actor=ADMIN[0],
        now=datetime.now(timezone.utc),
    )
    return created.secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

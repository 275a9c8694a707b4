"""Staff authentication as staff and attackers meet it: the console script that creates users, a
real server on loopback with a real SQLite file, and browsers that keep cookies (or forge them).

One server serves the module (it starts the compose workers and preview models, a few seconds);
the first-start setup gets fresh servers of its own. Sign-in attempts are forgotten before each
test, so one test's failures never lock another out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import pty
import re
import select as io_select
import subprocess
import sys
import time
import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from sqlalchemy import delete, func, select, update
from yarl import URL

from db import staff
from db.models import AuditRow, LoginAttemptRow, StaffRole, StaffSessionRow, StaffUserRow
from kiosk.auth import Passwords, new_token
from kiosk.errors import ExitCode
from kiosk.settings import Settings
from web.app import create_app
from servers import loopback_settings, running
from web.keys import STORAGE_KEY
from web.staff import require_login, requires

pytestmark = pytest.mark.asyncio(loop_scope="module")

ARTBOOTH = str(Path(sys.executable).with_name("artbooth"))
ADA = ("ada", "ada's long passphrase")  # admin
OTTO = ("otto", "otto's long passphrase")  # operator
CSRF_FIELD = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]{43})"')
SETUP_LINK = re.compile(r"/setup\?token=([A-Za-z0-9_-]{43})")


# Cheap hashes keep the many sign-ins here fast; the console script uses the defaults,
# so its users are rehashed at their first sign-in.
CHEAP_HASHES = {"ARTBOOTH_PASSWORD_HASH_MEMORY_MIB": "8", "ARTBOOTH_PASSWORD_HASH_TIME_COST": "1"}


@pytest.fixture(scope="module")
def staff_settings(tmp_path_factory, models_dir) -> Settings:
    return loopback_settings(
        tmp_path_factory.mktemp("staff"), models_dir, **CHEAP_HASHES, ARTBOOTH_LOGIN_MAX_FAILURES_PER_IP="12"
    )


@requires(StaffRole.ADMIN)
async def admin_only(request: web.Request) -> web.Response:
    return web.Response(text="admin area")


async def api_echo(request: web.Request) -> web.Response:
    identity = require_login(request)
    return web.json_response({"by": identity.username, "got": await request.json()})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(staff_settings):
    app = create_app(staff_settings)
    # Stand-ins for the admin-only pages and state-changing API calls still to come.
    app.router.add_get("/staff/test/admin-only", admin_only)
    app.router.add_post("/api/v1/test/echo", api_echo)
    async with running(staff_settings, app) as test_server:
        sessions = app[STORAGE_KEY].sessions
        passwords = Passwords.from_settings(staff_settings)
        now = datetime.now(timezone.utc)
        for (name, password), role in ((ADA, StaffRole.ADMIN), (OTTO, StaffRole.OPERATOR)):
            await staff.create_user(
                sessions, username=name, password_hash=passwords.hash(password), role=role, actor="test", now=now
            )
        yield test_server


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def no_earlier_attempts(server):
    async with server.app[STORAGE_KEY].sessions() as session, session.begin():
        await session.execute(delete(LoginAttemptRow))


@pytest_asyncio.fixture(loop_scope="module")
async def browsers():
    """Open browsers, each with its own cookies: ``await browsers()`` opens another."""
    opened: list[aiohttp.ClientSession] = []

    async def open_browser(**kwargs) -> aiohttp.ClientSession:
        kwargs.setdefault("cookie_jar", aiohttp.CookieJar(unsafe=True))  # unsafe: cookies for 127.0.0.1
        opened.append(aiohttp.ClientSession(**kwargs))
        return opened[-1]

    yield open_browser
    for browser in opened:
        await browser.close()


@dataclass
class Reply:
    status: int
    text: str
    headers: dict[str, str]
    set_cookies: dict[str, str]  # name -> the whole Set-Cookie header


async def request(browser, server, method: str, path: str, **kwargs) -> Reply:
    kwargs.setdefault("allow_redirects", False)
    async with browser.request(method, server.make_url(path), **kwargs) as response:
        text = await response.text()
        set_cookies = {header.split("=", 1)[0]: header for header in response.headers.getall("Set-Cookie", [])}
        return Reply(response.status, text, dict(response.headers), set_cookies)


async def sign_in(browser, server, username: str, password: str, **fields) -> Reply:
    form = await request(browser, server, "GET", "/staff/login")
    if form.status == 303:  # signed in already: the page sends one on, but its form still works
        token = cookie_of(browser, "artbooth_login_csrf")
    else:
        assert form.status == 200
        token = CSRF_FIELD.search(form.text).group(1)
    return await request(
        browser,
        server,
        "POST",
        "/staff/login",
        data={"csrf_token": token, "username": username, "password": password, **fields},
    )


async def signed_in(browsers, server, user: tuple[str, str]):
    browser = await browsers()
    reply = await sign_in(browser, server, *user)
    assert reply.status == 303, reply.text
    return browser


async def csrf_token_of(browser, server) -> str:
    async with browser.get(server.make_url("/api/v1/me")) as response:
        assert response.status == 200
        return (await response.json())["csrf_token"]


def cookie_of(browser, name: str) -> str:
    return next(cookie.value for cookie in browser.cookie_jar if cookie.key == name)


async def rows(server, model, *where) -> list:
    async with server.app[STORAGE_KEY].sessions() as session:
        return list(await session.scalars(select(model).where(*where).order_by(model.id)))


async def audit(server, action: str) -> list[AuditRow]:
    return await rows(server, AuditRow, AuditRow.action == action)


def without_values(page: str) -> str:
    """The page with its form values (the CSRF token, the username typed) blanked out."""
    return re.sub(r'value="[^"]*"', 'value=""', page)


# --- signing in and out ----------------------------------------------------------------------------


async def test_sign_in_sets_a_strict_http_only_session_cookie_and_shows_the_landing_page(server, browsers):
    browser = await browsers()
    form = await request(browser, server, "GET", "/staff/login")
    assert form.status == 200 and 'action="/staff/login"' in form.text and 'type="password"' in form.text
    assert "http://" not in form.text and "https://" not in form.text  # local assets only
    login_cookie = form.set_cookies["artbooth_login_csrf"]
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(re.split(r";\s*", login_cookie)), login_cookie

    reply = await sign_in(browser, server, *ADA)
    assert reply.status == 303 and reply.headers["Location"] == "/staff/"
    cookie = reply.set_cookies["artbooth_staff"]
    attributes = set(re.split(r";\s*", cookie))
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= attributes, cookie
    assert "Secure" not in attributes  # plain http here; see the setup test for https
    assert not any(a.lower().startswith(("max-age", "expires", "domain")) for a in attributes)

    # Only the session id's digest is stored.
    session_id = cookie_of(browser, "artbooth_staff")
    [row] = await rows(server, StaffSessionRow, StaffSessionRow.token_hash == hashlib.sha256(session_id.encode()).hexdigest())
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", session_id) and row.csrf_secret != session_id
    assert row.expires_at - row.created_at == timedelta(minutes=60)  # the idle limit, within the 12 hours

    home = await request(browser, server, "GET", "/staff/")
    assert home.status == 200
    assert "Welcome, ada" in home.text and "(admin)" in home.text
    assert 'action="/staff/logout"' in home.text and f'value="{row.csrf_secret}"' in home.text
    assert home.headers["Cache-Control"] == "no-store" and home.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in home.headers["Content-Security-Policy"]
    [login_audit] = [entry for entry in await audit(server, "staff.login") if entry.at == row.created_at]
    assert login_audit.subject == "ada" and login_audit.detail["client_ip"] == "127.0.0.1"

    # Signed in, the sign-in page sends one on.
    assert (await request(browser, server, "GET", "/staff/login")).headers["Location"] == "/staff/"


async def test_without_a_session_pages_redirect_to_sign_in_and_the_api_answers_401(server, browsers):
    browser = await browsers()
    reply = await request(browser, server, "GET", "/staff/?tab=1")
    location = URL(reply.headers["Location"])
    assert reply.status == 303 and location.path == "/staff/login" and location.query["next"] == "/staff/?tab=1"
    api = await request(browser, server, "GET", "/api/v1/me")
    assert api.status == 401 and api.headers["Content-Type"].startswith("application/problem+json")
    # A forged or stale cookie is not a session, and is cleared.
    forged = await request(browser, server, "GET", "/staff/", headers={"Cookie": f"artbooth_staff={new_token()}"})
    assert forged.status == 303 and forged.headers["Location"].startswith("/staff/login")
    assert re.search(r"artbooth_staff=\"?\"?;.*Max-Age=0", forged.set_cookies["artbooth_staff"])
    # After signing in, the page asked for first.
    form = await request(browser, server, "GET", str(location))
    reply = await request(
        browser,
        server,
        "POST",
        "/staff/login",
        data={"csrf_token": CSRF_FIELD.search(form.text).group(1), "username": "ada", "password": ADA[1], "next": "/staff/?tab=1"},
    )
    assert reply.status == 303 and reply.headers["Location"] == "/staff/?tab=1"
    # Never somewhere else.
    for elsewhere in ("https://evil.example/", "//evil.example/staff/", "/staff/\\\\evil.example"):
        reply = await sign_in(await browsers(), server, *ADA, next=elsewhere)
        assert reply.status == 303 and reply.headers["Location"] == "/staff/", elsewhere


async def test_sign_out_ends_the_session_on_the_server(server, browsers):
    browser = await signed_in(browsers, server, OTTO)
    session_id = cookie_of(browser, "artbooth_staff")
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    assert len(await rows(server, StaffSessionRow, StaffSessionRow.token_hash == digest)) == 1

    reply = await request(browser, server, "POST", "/staff/logout", data={"csrf_token": await csrf_token_of(browser, server)})
    assert reply.status == 303 and reply.headers["Location"] == "/staff/login"
    assert "Max-Age=0" in reply.set_cookies["artbooth_staff"]
    assert await rows(server, StaffSessionRow, StaffSessionRow.token_hash == digest) == []
    assert any(entry.subject == "otto" for entry in await audit(server, "staff.logout"))

    # Someone who kept a copy of the cookie gets nowhere with it.
    thief = await browsers(cookie_jar=aiohttp.DummyCookieJar())
    stolen = {"Cookie": f"artbooth_staff={session_id}"}
    assert (await request(thief, server, "GET", "/staff/", headers=stolen)).status == 303
    assert (await request(thief, server, "GET", "/api/v1/me", headers=stolen)).status == 401


async def test_a_new_sign_in_replaces_the_session_it_came_with(server, browsers):
    browser = await signed_in(browsers, server, OTTO)
    first = cookie_of(browser, "artbooth_staff")
    assert (await sign_in(browser, server, *OTTO)).status == 303
    assert cookie_of(browser, "artbooth_staff") != first
    digest = hashlib.sha256(first.encode()).hexdigest()
    assert await rows(server, StaffSessionRow, StaffSessionRow.token_hash == digest) == []


async def test_sessions_slide_with_use_but_end_when_idle_or_too_old(server, browsers):
    browser = await signed_in(browsers, server, OTTO)
    digest = hashlib.sha256(cookie_of(browser, "artbooth_staff").encode()).hexdigest()
    sessions = server.app[STORAGE_KEY].sessions

    async def set_times(created_ago: timedelta, seen_ago: timedelta, expires_in: timedelta) -> datetime:
        now = datetime.now(timezone.utc)
        async with sessions() as session, session.begin():
            await session.execute(
                update(StaffSessionRow)
                .where(StaffSessionRow.token_hash == digest)
                .values(created_at=now - created_ago, last_seen_at=now - seen_ago, expires_at=now + expires_in)
            )
        return now

    async def session_row() -> StaffSessionRow:
        [row] = await rows(server, StaffSessionRow, StaffSessionRow.token_hash == digest)
        return row

    # Used 10 minutes after the last request: 60 minutes from now again.
    now = await set_times(timedelta(minutes=30), timedelta(minutes=10), timedelta(minutes=50))
    assert (await request(browser, server, "GET", "/staff/")).status == 200
    row = await session_row()
    assert timedelta(minutes=59) < row.expires_at - now < timedelta(minutes=61)
    assert row.last_seen_at >= now

    # Near the 12-hour limit the expiry stops sliding at it.
    now = await set_times(timedelta(hours=11, minutes=30), timedelta(minutes=10), timedelta(minutes=20))
    assert (await request(browser, server, "GET", "/staff/")).status == 200
    row = await session_row()
    assert row.expires_at == row.created_at + timedelta(hours=12)

    # Past the 12 hours it ends, even if its expiry says otherwise (say, the setting was lowered).
    await set_times(timedelta(hours=12, minutes=1), timedelta(minutes=1), timedelta(minutes=30))
    assert (await request(browser, server, "GET", "/api/v1/me")).status == 401

    # Idle past its expiry: ended.
    await set_times(timedelta(minutes=90), timedelta(minutes=61), timedelta(seconds=-1))
    reply = await request(browser, server, "GET", "/staff/")
    assert reply.status == 303 and reply.headers["Location"].startswith("/staff/login")


async def test_a_disabled_user_is_signed_out_and_cannot_sign_in(server, browsers):
    browser = await signed_in(browsers, server, OTTO)
    sessions = server.app[STORAGE_KEY].sessions

    async def set_disabled(disabled: bool) -> None:
        async with sessions() as session, session.begin():
            await session.execute(update(StaffUserRow).where(StaffUserRow.username == "otto").values(disabled=disabled))

    await set_disabled(True)
    try:
        assert (await request(browser, server, "GET", "/api/v1/me")).status == 401
        reply = await sign_in(await browsers(), server, *OTTO)
        assert reply.status == 401 and "Wrong username or password." in reply.text
    finally:
        await set_disabled(False)
    [failure] = [e for e in await audit(server, "staff.login_failed") if e.detail.get("reason") == "disabled"]
    assert failure.subject == "otto"


# --- wrong passwords and lockouts ------------------------------------------------------------------


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(server, browsers):
    browser = await browsers()
    wrong_password = await sign_in(browser, server, "ada", "not ada's passphrase")
    unknown_user = await sign_in(browser, server, "adb", "not ada's passphrase")
    for reply in (wrong_password, unknown_user):
        assert reply.status == 401 and "Wrong username or password." in reply.text
        assert "artbooth_staff" not in reply.set_cookies
    assert without_values(wrong_password.text) == without_values(unknown_user.text)
    reasons = {e.subject: e.detail["reason"] for e in (await audit(server, "staff.login_failed"))[-2:]}
    assert reasons == {"ada": "wrong password", "adb": "unknown user"}  # the audit log knows; the answer does not


async def test_five_failures_lock_a_username_for_15_minutes_whether_or_not_it_exists(server, browsers, caplog):
    caplog.set_level(logging.WARNING, logger="web.staff")
    browser = await browsers()
    locked_pages = {}
    for username, password in (ADA, ("nobody", "whatever passphrase")):
        for _ in range(5):
            reply = await sign_in(browser, server, username, "a wrong passphrase")
            assert reply.status == 401 and "Wrong username or password." in reply.text
        # Now even the right password is refused, unchecked, for 15 minutes.
        locked = await sign_in(browser, server, username, password)
        assert locked.status == 429 and "artbooth_staff" not in locked.set_cookies
        assert "Too many failed sign-ins. Try again in 15 min." in locked.text
        assert 890 <= int(locked.headers["Retry-After"]) <= 900
        locked_pages[username] = without_values(locked.text)
    assert locked_pages["ada"] == locked_pages["nobody"]

    lockouts = await audit(server, "staff.lockout")
    assert [(e.subject, e.detail["locks"]) for e in lockouts[-2:]] == [("ada", "username"), ("nobody", "username")]
    assert {e.subject for e in (await audit(server, "staff.login_refused"))[-2:]} == {"ada", "nobody"}
    messages = [record.getMessage() for record in caplog.records]
    assert sum("failed sign-in as 'ada'" in m for m in messages) == 5
    assert any("sign-ins as 'ada' locked for 15 minutes" in m for m in messages)
    assert any("sign-in as 'ada' from 127.0.0.1 refused unchecked" in m for m in messages)

    # Another user is not affected...
    assert (await sign_in(browser, server, *OTTO)).status == 303
    # ...and 15 minutes later ada can sign in again.
    async with server.app[STORAGE_KEY].sessions() as session, session.begin():
        for attempt in await session.scalars(select(LoginAttemptRow)):
            attempt.at -= timedelta(minutes=15, seconds=1)
    assert (await sign_in(browser, server, *ADA)).status == 303


async def test_concurrent_guesses_cannot_slip_past_the_lockout(server, browsers):
    browser = await browsers()
    form = await request(browser, server, "GET", "/staff/login")
    data = {"csrf_token": CSRF_FIELD.search(form.text).group(1), "username": "ada", "password": "guess number one"}
    replies = await asyncio.gather(*(request(browser, server, "POST", "/staff/login", data=data) for _ in range(12)))
    assert sorted(reply.status for reply in replies) == [401] * 5 + [429] * 7
    assert len(await rows(server, LoginAttemptRow, LoginAttemptRow.username == "ada")) == 5


async def test_a_signed_in_user_failures_are_cleared_and_many_usernames_from_one_address_lock_it(server, browsers):
    browser = await browsers()
    for _ in range(4):
        assert (await sign_in(browser, server, "ada", "a wrong passphrase")).status == 401
    assert (await sign_in(browser, server, *ADA)).status == 303
    for _ in range(4):  # the count started again at the successful sign-in
        assert (await sign_in(browser, server, "ada", "a wrong passphrase")).status == 401
    # 12 failures from one address (4 + 4 + these 4, under 5 names) lock the address.
    for name in ("eve1", "eve2", "eve3", "eve4"):
        assert (await sign_in(browser, server, name, "a wrong passphrase")).status == 401
    assert (await sign_in(browser, server, *OTTO)).status == 429
    assert (await audit(server, "staff.lockout"))[-1].detail["locks"] == "client_ip"


# --- CSRF ------------------------------------------------------------------------------------------


async def test_state_changing_requests_need_the_session_csrf_token(server, browsers):
    browser = await signed_in(browsers, server, ADA)
    token = await csrf_token_of(browser, server)
    other_token = await csrf_token_of(await signed_in(browsers, server, ADA), server)  # another session's

    for data in ({}, {"csrf_token": ""}, {"csrf_token": other_token}, {"csrf_token": new_token()}):
        reply = await request(browser, server, "POST", "/staff/logout", data=data)
        assert reply.status == 403 and "security token is missing or wrong" in reply.text, data
    assert (await request(browser, server, "GET", "/api/v1/me")).status == 200  # still signed in

    echo = {"hello": "world"}
    for headers in ({}, {"X-CSRF-Token": other_token}):
        reply = await request(browser, server, "POST", "/api/v1/test/echo", json=echo, headers=headers)
        assert reply.status == 403 and reply.headers["Content-Type"].startswith("application/problem+json")
    for method in ("PUT", "PATCH", "DELETE"):
        assert (await request(browser, server, method, "/api/v1/test/echo", json=echo)).status == 403
    reply = await request(browser, server, "POST", "/api/v1/test/echo", json=echo, headers={"X-CSRF-Token": token})
    assert reply.status == 200 and '"by": "ada"' in reply.text

    # A bearer request is not authenticated by the cookie, so it needs no CSRF token (and gets no session).
    bearer = await request(browser, server, "POST", "/api/v1/test/echo", json=echo, headers={"Authorization": "Bearer x"})
    assert bearer.status == 401

    reply = await request(browser, server, "POST", "/staff/logout", data={"csrf_token": token})
    assert reply.status == 303
    assert (await request(browser, server, "GET", "/api/v1/me")).status == 401


async def test_the_sign_in_form_cannot_be_posted_from_another_site(server, browsers):
    good_token = None
    for cookie, field in ((None, None), (None, "x" * 43), ("y" * 43, None), ("y" * 43, "z" * 43), ("short", "short")):
        browser = await browsers(cookie_jar=aiohttp.DummyCookieJar())
        headers = {"Cookie": f"artbooth_login_csrf={cookie}"} if cookie else {}
        data = {"username": "ada", "password": ADA[1]} | ({"csrf_token": field} if field else {})
        reply = await request(browser, server, "POST", "/staff/login", data=data, headers=headers)
        assert reply.status == 403 and "This form had expired" in reply.text, (cookie, field)
        assert "artbooth_staff" not in reply.set_cookies
        good_token = CSRF_FIELD.search(reply.text).group(1)  # the refusal offers a fresh, working form
    assert await rows(server, LoginAttemptRow) == []  # refused before the password was looked at
    retry = await request(
        browser,
        server,
        "POST",
        "/staff/login",
        data={"csrf_token": good_token, "username": "ada", "password": ADA[1]},
        headers={"Cookie": f"artbooth_login_csrf={SimpleCookie(reply.set_cookies['artbooth_login_csrf'])['artbooth_login_csrf'].value}"},
    )
    assert retry.status == 303


# --- roles -----------------------------------------------------------------------------------------


async def test_an_operator_is_refused_admin_only_routes(server, browsers):
    operator = await signed_in(browsers, server, OTTO)
    reply = await request(operator, server, "GET", "/staff/test/admin-only")
    assert reply.status == 403 and "needs the admin role" in reply.text
    home = await request(operator, server, "GET", "/staff/")
    assert home.status == 200 and "Welcome, otto" in home.text and "(operator)" in home.text
    async with operator.get(server.make_url("/api/v1/me")) as response:
        assert (await response.json())["role"] == "operator"

    admin = await signed_in(browsers, server, ADA)
    reply = await request(admin, server, "GET", "/staff/test/admin-only")
    assert reply.status == 200 and reply.text == "admin area"
    anonymous = await request(await browsers(), server, "GET", "/staff/test/admin-only")
    assert anonymous.status == 303


# --- the console script ----------------------------------------------------------------------------


def artbooth(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([ARTBOOTH, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)


def artbooth_on_a_terminal(args: list[str], env: dict[str, str], answers: list[str]) -> tuple[int, str]:
    """Run with a terminal as standard input, typing each answer after its prompt; (exit code, stderr)."""
    primary, secondary = pty.openpty()
    # A session of its own has no controlling terminal, so getpass asks on standard input (the pty).
    process = subprocess.Popen(
        [ARTBOOTH, *args], env=env, stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    os.close(secondary)
    stderr = b""
    try:
        for number, answer in enumerate(answers, start=1):
            deadline = time.monotonic() + 60
            while stderr.count(b": ") < number:
                ready, _, _ = io_select.select([process.stderr], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(process.stderr.fileno(), 4096) if ready else b""
                assert chunk, f"no prompt {number}: {stderr!r}"
                stderr += chunk
            os.write(primary, answer.encode() + b"\n")
        _, rest = process.communicate(timeout=60)
    finally:
        os.close(primary)
        if process.poll() is None:
            process.kill()
    return process.returncode, (stderr + rest).decode()


@pytest.fixture(scope="module")
def cli_env(staff_settings) -> dict[str, str]:
    # The server's database; the default (production) hash cost.
    return {
        name: value for name, value in os.environ.items() if not name.startswith("ARTBOOTH_")
    } | {"ARTBOOTH_DATA_DIR": str(staff_settings.data_dir)}


async def test_create_user_with_the_console_script_then_sign_in(server, browsers, cli_env):
    done = artbooth(["admin", "create-user", "Cleo", "--role", "operator", "--password-stdin"], cli_env, "cleo's long passphrase\n")
    assert done.returncode == ExitCode.OK, done.stderr
    assert done.stdout.strip() == "created operator 'cleo'"
    [cleo] = await rows(server, StaffUserRow, StaffUserRow.username == "cleo")
    assert cleo.role == "operator" and cleo.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert "cleo's long passphrase" not in cleo.password_hash

    refusals = [
        (["cleo", "--role", "admin", "--password-stdin"], "another passphrase\n", ExitCode.USER_EXISTS, "a staff user named 'cleo' exists already"),
        (["dora", "--role", "admin", "--password-stdin"], "too short\n", ExitCode.WEAK_PASSWORD, "at least 10 characters"),
        (["dora", "--role", "admin", "--password-stdin"], "", ExitCode.WEAK_PASSWORD, "at least 10 characters"),
        (["dorothea.m", "--role", "admin", "--password-stdin"], "Dorothea.M\n", ExitCode.WEAK_PASSWORD, "must not be the username"),
        (["dora smith", "--role", "admin", "--password-stdin"], "a fine passphrase\n", ExitCode.USAGE, "invalid username"),
        (["dora", "--role", "boss", "--password-stdin"], "a fine passphrase\n", ExitCode.USAGE, "invalid choice"),
        (["dora", "--role", "admin"], "a fine passphrase\n", ExitCode.USAGE, "--password-stdin"),  # no terminal to ask on
    ]
    for args, stdin, code, message in refusals:
        done = artbooth(["admin", "create-user", *args], cli_env, stdin)
        assert done.returncode == code and message in done.stderr, (args, done.returncode, done.stderr)
    assert await rows(server, StaffUserRow, StaffUserRow.username.in_(["dora", "dorothea.m"])) == []
    help_text = artbooth(["admin", "create-user", "--help"], cli_env).stdout
    assert "15  user exists" in help_text and "16  weak password" in help_text

    # Typed as people do; the first sign-in rehashes with the server's (here cheaper) parameters.
    browser = await browsers()
    assert (await sign_in(browser, server, " Cleo", "cleo's long passphrase")).status == 303
    [cleo] = await rows(server, StaffUserRow, StaffUserRow.username == "cleo")
    assert cleo.password_hash.startswith("$argon2id$v=19$m=8192,t=1,p=4$")
    assert (await audit(server, "staff.login"))[-1].detail == {"client_ip": "127.0.0.1", "rehashed": True}
    assert (await sign_in(await browsers(), server, "cleo", "cleo's long passphrase")).status == 303
    assert "rehashed" not in (await audit(server, "staff.login"))[-1].detail


async def test_create_user_asks_for_the_password_twice_on_a_terminal(server, cli_env):
    args = ["admin", "create-user", "dan", "--role", "admin"]
    code, stderr = await asyncio.to_thread(artbooth_on_a_terminal, args, cli_env, ["dan's long passphrase", "dan's long passfrase"])
    assert code == ExitCode.USAGE and "the two passwords differ" in stderr, stderr
    assert "dan's long" not in stderr  # not echoed
    code, stderr = await asyncio.to_thread(artbooth_on_a_terminal, args, cli_env, ["dan's long passphrase"] * 2)
    assert code == ExitCode.OK, stderr
    [dan] = await rows(server, StaffUserRow, StaffUserRow.username == "dan")
    assert dan.role == "admin"


# --- first start -----------------------------------------------------------------------------------


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_first_start_setup_link_creates_the_first_admin_once(tmp_path, models_dir, browsers):
    # Behind a TLS proxy: the cookies must be Secure even though the request reached us as http.
    settings = loopback_settings(tmp_path / "data", models_dir, **CHEAP_HASHES)
    settings = dataclasses.replace(settings, public_url=f"https://127.0.0.1:{settings.port}")
    port = settings.port
    log = Collected()
    logging.getLogger("web.staff").addHandler(log)
    try:
        async with running(settings) as server:
            [announcement] = [m for m in log.messages if "/setup?token=" in m]
            assert f"https://127.0.0.1:{port}/setup?token=" in announcement and "artbooth admin create-user" in announcement
            token = SETUP_LINK.search(announcement).group(1)
            browser = await browsers(cookie_jar=aiohttp.DummyCookieJar())  # cookies by hand: they are Secure

            for path in ("/setup", f"/setup?token={new_token()}", f"/setup?token={token[:-1]}"):
                assert (await request(browser, server, "GET", path)).status == 404, path
            login = await request(browser, server, "GET", "/staff/login")
            assert "No staff account exists yet" in login.text

            page = await request(browser, server, "GET", f"/setup?token={token}")
            assert page.status == 200 and "Create the first administrator" in page.text
            assert "Secure" in page.set_cookies["artbooth_login_csrf"]
            csrf = CSRF_FIELD.search(page.text).group(1)
            cookie = {"Cookie": f"artbooth_login_csrf={csrf}"}
            form = {"token": token, "csrf_token": csrf, "username": "Curator", "password": "the curator's passphrase"}

            async def post(fields: dict[str, str], headers=cookie) -> Reply:
                return await request(browser, server, "POST", "/setup", data=fields, headers=headers)

            assert (await post(form | {"password_again": form["password"]}, headers={})).status == 403
            reply = await post(form | {"password_again": "the curator's passphrasE"})
            assert reply.status == 400 and "The two passwords differ." in reply.text
            reply = await post(form | {"password": "too short", "password_again": "too short"})
            assert reply.status == 400 and "at least 10 characters" in reply.text
            reply = await post(form | {"username": "cur ator", "password_again": form["password"]})
            assert reply.status == 400 and "Invalid username" in reply.text
            reply = await post(form | {"password_again": form["password"], "token": new_token()})
            assert reply.status == 404

            reply = await post(form | {"password_again": form["password"]})
            assert reply.status == 303 and reply.headers["Location"] == "/staff/"
            session_cookie = reply.set_cookies["artbooth_staff"]
            assert {"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} <= set(re.split(r";\s*", session_cookie))
            session = {"Cookie": SimpleCookie(session_cookie).output(attrs=[], header="").strip()}
            home = await request(browser, server, "GET", "/staff/", headers=session)
            assert home.status == 200 and "Welcome, curator" in home.text and "(admin)" in home.text

            # Once only.
            assert (await request(browser, server, "GET", f"/setup?token={token}")).status == 404
            again = await post(form | {"username": "second", "password_again": form["password"]})
            assert again.status == 404
            async with server.app[STORAGE_KEY].sessions() as db:
                assert await db.scalar(select(func.count()).select_from(StaffUserRow)) == 1
                [created] = list(await db.scalars(select(AuditRow).where(AuditRow.action == "staff.create_user")))
            assert (created.actor, created.subject, created.detail) == ("setup", "curator", {"role": "admin"})
            assert any("first administrator 'curator' created" in m for m in log.messages)

        # A restart with a staff user logs no setup link and offers no setup page.
        log.messages.clear()
        async with running(settings) as server:
            assert not any("/setup?token=" in m for m in log.messages)
            assert (await request(browser, server, "GET", f"/setup?token={token}")).status == 404
            assert "No staff account exists yet" not in (await request(browser, server, "GET", "/staff/login")).text
    finally:
        logging.getLogger("web.staff").removeHandler(log)

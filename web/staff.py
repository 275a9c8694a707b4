"""Staff authentication over HTTP: sign-in and sign-out, the first-start setup, the session cookie,
CSRF checks, and require_role for the handlers of the staff pages and the API.

Every request under /staff and /api/v1 passes `middleware`. It loads the staff session that the
session cookie names (request[IDENTITY_KEY]; absent when there is none, it expired or its user
was disabled) and refuses with 403 a state-changing request authenticated by that cookie unless
it carries the session's CSRF token, as the form field ``csrf_token`` or the ``X-CSRF-Token``
header. Requests with an ``Authorization: Bearer`` header are not
authenticated by the cookie, so they need no CSRF token: under /api/v1 the API token they carry
(db/api_tokens.py) authenticates them, elsewhere nothing does. The sign-in and setup forms,
posted before any session exists, are protected by a double-submit cookie instead.

The middleware itself refuses every request under /staff and /api/v1 that has neither a session
nor a valid token, except the few in PUBLIC_PATHS (signing in, the API's description): a
handler that forgot require_login is still protected. Handlers call require_login(request) or
require_role(request, StaffRole.ADMIN), or are wrapped in @requires(StaffRole.ADMIN): without a
session the staff pages redirect to the sign-in page and the API answers 401; with too small a
role both answer 403. API handlers call require_scope(request, "photos:read"), which accepts a
token with that scope or a staff session whose role grants it (db.api_tokens.ROLE_SCOPES). API
refusals are problem details (web/api/problems.py).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from aiohttp import web

from db import api_tokens, staff
from db.api_tokens import ROLE_SCOPES, TokenState
from db.models import StaffRole
from db.service import SessionFactory
from db.staff import StaffUser, UserExistsError
from kiosk.auth import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    InvalidUsernameError,
    KeyedLocks,
    LockoutPolicy,
    Passwords,
    SessionPolicy,
    SetupToken,
    WeakPasswordError,
    check_password,
    check_username,
    looks_like_token,
    new_token,
    normalize_username,
    role_allows,
    same_token,
    token_digest,
)
from kiosk.settings import Settings
from web import staff_pages, staff_text
from web.api.problems import Problem, problem_response
from web.keys import STORAGE_KEY
from web.staff_pages import CSRF_FIELD
from web.uploads import UploadRefusedError, read_form, status_for, upload_limit

log = logging.getLogger(__name__)

SESSION_COOKIE = "artbooth_staff"
# The double-submit token of the sign-in and setup forms, which are posted before a session exists.
LOGIN_CSRF_COOKIE = "artbooth_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_AREAS = ("/staff", "/api/v1")
_SECURED_AREAS = SESSION_AREAS + ("/setup",)
# Posted with the pre-session token, which they check themselves.
_OWN_CSRF_PATHS = frozenset({"/staff/login"})
HOME = "/staff/"
LOGIN = "/staff/login"
API_DOCUMENT = "/api/v1/openapi.json"
# The only paths under SESSION_AREAS answered without a session or token.
PUBLIC_PATHS = frozenset({"/staff", LOGIN, API_DOCUMENT})

# Their words are in web/staff_text.py (the staff catalogue translates them on the staff pages).
FAILED_MESSAGE = staff_text.FAILED_MESSAGE
CSRF_MESSAGE = staff_text.CSRF_MESSAGE
FORM_EXPIRED_MESSAGE = staff_text.FORM_EXPIRED_MESSAGE

# Staff pages must not be cached, framed by other sites, or leak their URLs.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class StaffIdentity:
    """Who a request is from: a signed-in staff user and their session."""

    user_id: int
    username: str
    role: StaffRole
    session_id: int
    csrf_token: str


@dataclass(frozen=True)
class ApiCaller:
    """Who an API request is from, as the audit log names them, and the scopes they hold."""

    actor: str
    scopes: frozenset[str]


IDENTITY_KEY = web.RequestKey("staff_identity", StaffIdentity)
# Set for a request under /api/v1 that carries a valid API token.
TOKEN_CALLER_KEY = web.RequestKey("api_token_caller", ApiCaller)
_STALE_COOKIE_KEY = web.RequestKey("staff_stale_cookie", bool)


class LoginResult(enum.Enum):
    SIGNED_IN = "signed-in"
    FAILED = "failed"
    LOCKED = "locked"


@dataclass(frozen=True)
class LoginOutcome:
    result: LoginResult
    session_token: str | None = None  # set when SIGNED_IN
    retry_after_s: int = 0  # set when LOCKED


def _now() -> datetime:
    return datetime.now(timezone.utc)


class StaffAuth:
    """Signing in and out, sessions and the first-start setup; one per application."""

    def __init__(self, settings: Settings, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self.passwords = Passwords.from_settings(settings)
        self.session_policy = SessionPolicy.from_settings(settings)
        self.lockout = LockoutPolicy.from_settings(settings)
        self.setup = SetupToken()
        self._setup_lock = asyncio.Lock()
        # Attempts at one username are checked one at a time, so concurrent guesses cannot all
        # pass the lockout check before any of their failures is recorded.
        self._username_locks = KeyedLocks()

    async def start(self) -> str | None:
        """At service start: the setup token when no staff user exists yet (else None)."""
        # The decoy hash is made now, so the first sign-in with an unknown name is not slower than others.
        await asyncio.to_thread(self.passwords.verify_decoy, "")
        if await staff.count_users(self.sessions) == 0:
            return self.setup.issue()
        return None

    async def log_in(self, typed_username: str, password: str, client_ip: str, *, replacing: str | None) -> LoginOutcome:
        """Check a sign-in. Unknown, disabled and existing usernames take the same time and get the
        same answer; lockouts apply to any username typed."""
        # Whatever was typed is recorded (as the lockout's key and in the audit log), within the column's limits.
        username = "".join(c for c in normalize_username(typed_username) if c.isprintable())[:64]
        async with self._username_locks.hold(username):
            now = _now()
            by_user, by_ip = await staff.login_failures(
                self.sessions, username=username, client_ip=client_ip, since=now - self.lockout.lookback
            )
            locked_until = max(
                (
                    until
                    for until in (
                        self.lockout.locked_until(by_user, self.lockout.max_failures, now),
                        self.lockout.locked_until(by_ip, self.lockout.max_failures_per_ip, now),
                    )
                    if until is not None
                ),
                default=None,
            )
            if locked_until is not None:
                log.warning(
                    "sign-in as %r from %s refused unchecked: locked until %s",
                    username,
                    client_ip,
                    f"{locked_until:%H:%M:%S} UTC",
                )
                await staff.record_lockout_refusal(
                    self.sessions, username=username, client_ip=client_ip, locked_until=locked_until, now=now
                )
                return LoginOutcome(LoginResult.LOCKED, retry_after_s=math.ceil((locked_until - now).total_seconds()))

            user = await staff.get_user(self.sessions, username) if username else None
            usable = user is not None and not user.disabled and len(password) <= MAX_PASSWORD_LENGTH
            check = await self.passwords.verify_async(user.password_hash if usable else None, password[:MAX_PASSWORD_LENGTH])
            if check.ok:
                token = await self._open_session(
                    user,
                    client_ip,
                    now,
                    replacing_hash=token_digest(replacing) if looks_like_token(replacing) else None,
                    new_password_hash=check.rehashed,
                )
                log.info("%s signed in from %s%s", username, client_ip, " (password rehashed)" if check.rehashed else "")
                return LoginOutcome(LoginResult.SIGNED_IN, session_token=token)

            reason = "unknown user" if user is None else "disabled" if user.disabled else "wrong password"
            # Not locked before this failure: a lock now is one this failure starts.
            locks = None
            if self.lockout.locked_until([*by_user, now], self.lockout.max_failures, now):
                locks = "username"
            elif self.lockout.locked_until([*by_ip, now], self.lockout.max_failures_per_ip, now):
                locks = "client_ip"
            await staff.record_login_failure(
                self.sessions,
                username=username,
                client_ip=client_ip,
                reason=reason,
                locks=locks,
                now=now,
                forget_before=now - self.lockout.lookback,
            )
        log.warning("failed sign-in as %r from %s (%s)", username, client_ip, reason)
        if locks is not None:
            log.warning(
                "sign-ins %s locked for %d minutes after repeated failures",
                f"as {username!r}" if locks == "username" else f"from {client_ip}",
                self.lockout.lockout // timedelta(minutes=1),
            )
        return LoginOutcome(LoginResult.FAILED)

    async def _open_session(
        self,
        user: StaffUser,
        client_ip: str,
        now: datetime,
        *,
        replacing_hash: str | None = None,
        new_password_hash: str | None = None,
    ) -> str:
        """Start a session for ``user``; returns its token, which only the cookie will hold."""
        token = new_token()
        await staff.open_session(
            self.sessions,
            user=user,
            token_hash=token_digest(token),
            csrf_secret=new_token(),
            client_ip=client_ip,
            now=now,
            expires_at=self.session_policy.expiry(now, now),
            replacing_hash=replacing_hash,
            new_password_hash=new_password_hash,
        )
        return token

    async def identify(self, token: str) -> StaffIdentity | None:
        """The live session the cookie names, its sliding expiry moved on; None when there is none."""
        if not looks_like_token(token):
            return None
        now = _now()
        session = await staff.find_session(
            self.sessions, token_digest(token), now=now, started_after=now - self.session_policy.absolute
        )
        if session is None:
            return None
        if self.session_policy.needs_touch(session.last_seen_at, now):
            await staff.touch_session(
                self.sessions, session.id, now=now, expires_at=self.session_policy.expiry(session.created_at, now)
            )
        return StaffIdentity(
            user_id=session.user.id,
            username=session.user.username,
            role=session.user.role,
            session_id=session.id,
            csrf_token=session.csrf_secret,
        )

    async def log_out(self, identity: StaffIdentity) -> None:
        await staff.end_session(self.sessions, identity.session_id, actor=identity.username, now=_now())
        log.info("%s signed out", identity.username)

    async def setup_still_open(self) -> bool:
        """Whether the setup token can still be used: it is withdrawn once any staff user exists
        (created by the setup, or meanwhile with `artbooth admin create-user`)."""
        if self.setup.pending and await staff.count_users(self.sessions) > 0:
            self.setup.withdraw()
        return self.setup.pending

    async def complete_setup(
        self, setup_token: str, typed_username: str, password: str, client_ip: str
    ) -> tuple[StaffUser, str] | None:
        """Create the first administrator and sign them in: (user, session token). None when the
        token is wrong or spent; InvalidUsernameError or WeakPasswordError when the form must be corrected."""
        async with self._setup_lock:
            if not self.setup.matches(setup_token) or not await self.setup_still_open():
                return None
            username = check_username(typed_username)
            check_password(password, username)
            password_hash = await self.passwords.hash_async(password)
            now = _now()
            user = await staff.create_user(
                self.sessions,
                username=username,
                password_hash=password_hash,
                role=StaffRole.ADMIN,
                actor="setup",
                now=now,
                only_if_first=True,
            )
            self.setup.withdraw()
            if user is None:
                return None
            token = await self._open_session(user, client_ip, now)
        log.warning("first administrator %r created with the setup link, from %s", username, client_ip)
        return user, token


STAFF_AUTH_KEY = web.AppKey("staff_auth", StaffAuth)


async def staff_auth(app: web.Application):
    """cleanup_ctx (after storage): the StaffAuth, and the setup link logged when nobody can sign in yet."""
    settings = app[STORAGE_KEY].settings  # the public URL in effect, staff's dashboard value included
    auth = StaffAuth(settings, app[STORAGE_KEY].sessions)
    setup_token = await auth.start()
    app[STAFF_AUTH_KEY] = auth
    if setup_token is not None:
        log.warning(
            "no staff account exists yet: create the first administrator at %s/setup?token=%s "
            "(the link works once, until the service stops), or run `artbooth admin create-user NAME --role admin`",
            settings.resolved_service_url,
            setup_token,
        )
    yield


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/staff", to_home)
    router.add_get(LOGIN, login_page)
    router.add_post(LOGIN, login)
    router.add_post("/staff/logout", logout)
    router.add_get("/setup", setup_page)
    router.add_post("/setup", setup)
    router.add_get("/api/v1/me", me)


# --- the middleware and what handlers call ------------------------------------------------------


def _within(path: str, areas: tuple[str, ...]) -> bool:
    return any(path == area or path.startswith(area + "/") for area in areas)


def _is_api(request: web.Request) -> bool:
    return _within(request.path, ("/api/v1",))


def _has_bearer(request: web.Request) -> bool:
    return request.headers.get("Authorization", "").split(" ", 1)[0].lower() == "bearer"


@web.middleware
async def middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not _within(request.path, _SECURED_AREAS):
        return await handler(request)
    if _within(request.path, SESSION_AREAS) and _has_bearer(request):
        if _is_api(request):
            refusal = await _authenticate_token(request)
            if refusal is not None:
                return _secured(request, refusal)
    elif _within(request.path, SESSION_AREAS):
        token = request.cookies.get(SESSION_COOKIE)
        if token is not None:
            identity = await request.app[STAFF_AUTH_KEY].identify(token)
            if identity is None:
                request[_STALE_COOKIE_KEY] = True
            else:
                request[IDENTITY_KEY] = identity
                refusal = await _csrf_refusal(request, identity)
                if refusal is not None:
                    return _secured(request, refusal)
    if (
        _within(request.path, SESSION_AREAS)
        and request.path not in PUBLIC_PATHS
        and IDENTITY_KEY not in request
        and TOKEN_CALLER_KEY not in request
    ):
        # Defence in depth: refused here even if the handler forgot to ask for a sign-in.
        try:
            require_login(request)
        except Problem as problem:
            return _secured(request, problem.response(request))
        except web.HTTPException as exc:
            _secured(request, exc)
            raise
    try:
        response = await handler(request)
    except Problem as problem:
        response = problem.response(request)
    except web.HTTPException as exc:
        _secured(request, exc)
        raise
    return _secured(request, response)


async def _csrf_refusal(request: web.Request, identity: StaffIdentity) -> web.Response | None:
    """The refusal of a state-changing request without the session's CSRF token; None when it may go on."""
    if request.method not in STATE_CHANGING or request.path in _OWN_CSRF_PATHS:
        return None
    try:
        if await _carries_csrf_token(request, identity.csrf_token):
            return None
    except UploadRefusedError as exc:
        # A form that cannot be read (too large, malformed) is refused for what it is, not logged
        # as a forgery: its token may well be in the part that could not be read.
        return _unreadable_form(request, exc)
    log.warning(
        "refused %s %s by %s from %s: missing or wrong CSRF token",
        request.method,
        request.path,
        identity.username,
        _client_ip(request),
    )
    return _refusal(request, 403, CSRF_MESSAGE)


async def _carries_csrf_token(request: web.Request, expected: str) -> bool:
    """Whether the request carries the session's CSRF token; UploadRefusedError for a form that cannot be read."""
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        given = (await read_form(request)).get(CSRF_FIELD)  # aiohttp keeps the parsed form for the handler
    return same_token(given, expected)


def _unreadable_form(request: web.Request, refused: UploadRefusedError) -> web.Response:
    status = status_for(refused.exit_code)  # 413 for a body over the limit, 400 for a malformed one
    if _is_api(request):
        return problem_response(request, status, str(refused), code="unreadable_form")
    if status == 413:
        message = f"The file is larger than the limit of {upload_limit(request):,} bytes. Choose a smaller one and try again."
    else:
        reason = str(refused)
        message = f"{reason[0].upper()}{reason[1:]}. Go back, reload the page and try again."
    return staff_pages.html(request, "staff/refused.html", message=message, status=status)


def _secured(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    if response.prepared:  # a handler that streamed its answer has sent its headers already
        return response
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.get(_STALE_COOKIE_KEY) and SESSION_COOKIE not in response.cookies:
        _clear_session_cookie(request, response)
    return response


async def _authenticate_token(request: web.Request) -> web.Response | None:
    """Note the caller of a request with a valid API token; a 401 problem for any other token."""
    secret = request.headers["Authorization"][len("bearer") :].strip()
    now = _now()
    check = await api_tokens.authenticate(request.app[STORAGE_KEY].sessions, secret, now=now)
    if check.state is TokenState.ACTIVE:
        token = check.token
        request[TOKEN_CALLER_KEY] = ApiCaller(actor=f"token:{token.id}:{token.name}"[:64], scopes=frozenset(token.scopes))
        return None
    if check.state is TokenState.REVOKED:
        detail = f"this API token ({check.token.prefix}...) was revoked at {check.token.revoked_at:%Y-%m-%d %H:%M} UTC"
    elif check.state is TokenState.EXPIRED:
        detail = f"this API token ({check.token.prefix}...) expired at {check.token.expires_at:%Y-%m-%d %H:%M} UTC"
    else:
        detail = "the API token is not valid; an administrator creates tokens in the staff dashboard under API tokens"
    log.warning("refused %s %s from %s: %s", request.method, request.path, _client_ip(request), detail)
    return problem_response(
        request,
        401,
        detail,
        code=f"token_{check.state.value}",
        headers={"WWW-Authenticate": 'Bearer realm="ArtBooth API", error="invalid_token"'},
    )


def _refusal(request: web.Request, status: int, message: str) -> web.Response:
    if _is_api(request):
        return problem_response(request, status, message, code="csrf_token_missing")
    return staff_pages.html(request, "staff/refused.html", message=message, status=status)


async def staff_identity(request: web.Request) -> StaffIdentity | None:
    """The signed-in staff user of a request anywhere on the site, e.g. a booth's routes
    (web/kiosk.py); `middleware` has already looked it up under /staff and /api/v1."""
    if IDENTITY_KEY not in request:
        token = request.cookies.get(SESSION_COOKIE)
        identity = await request.app[STAFF_AUTH_KEY].identify(token) if token is not None else None
        if identity is None:
            return None
        request[IDENTITY_KEY] = identity
    return request[IDENTITY_KEY]


def require_login(request: web.Request) -> StaffIdentity:
    """The signed-in staff user, or an HTTP exception to raise: a redirect to the sign-in page
    (back to this page afterwards) from the staff pages, 401 from the API."""
    identity = request.get(IDENTITY_KEY)
    if identity is not None:
        return identity
    if _is_api(request):
        raise Problem(
            401,
            "send an API token (Authorization: Bearer abt_...) or sign in to the staff pages first",
            headers={"WWW-Authenticate": 'Bearer realm="ArtBooth API"'},
        )
    target = LOGIN if request.method not in ("GET", "HEAD") else f"{LOGIN}?next={quote(request.path_qs, safe='/')}"
    raise web.HTTPSeeOther(target)


def require_role(request: web.Request, role: StaffRole) -> StaffIdentity:
    """require_login, and 403 unless the user's role allows ``role`` (an admin may do what an operator may)."""
    identity = require_login(request)
    if not role_allows(identity.role, role):
        log.warning(
            "refused %s %s to %s: needs role %s, has %s",
            request.method,
            request.path,
            identity.username,
            role.value,
            identity.role.value,
        )
        if _is_api(request):
            raise Problem(403, staff_text.ROLE_MESSAGE % {"needed": role.value, "held": identity.role.value}, code="role_too_small")
        translated = staff_pages.gettext(request, staff_text.ROLE_MESSAGE) % {
            "needed": staff_pages.gettext(request, staff_text.ROLE_LABELS[role.value]),
            "held": staff_pages.gettext(request, staff_text.ROLE_LABELS[identity.role.value]),
        }
        raise web.HTTPForbidden(text=staff_pages.render(request, "staff/refused.html", message=translated), content_type="text/html")
    return identity


def require_scope(request: web.Request, scope: str) -> ApiCaller:
    """For API handlers: the caller, if their API token has ``scope`` or their staff role grants it;
    else a 401 or 403 problem to raise."""
    if scope not in api_tokens.SCOPES:
        raise ValueError(f"unknown scope {scope!r}")  # a typo in a handler, not the client's fault
    caller = request.get(TOKEN_CALLER_KEY)
    if caller is None:
        identity = require_login(request)
        caller = ApiCaller(actor=identity.username, scopes=ROLE_SCOPES[identity.role])
        holder = f"the {identity.role.value} role"
    else:
        holder = "this API token"
    if scope not in caller.scopes:
        log.warning("refused %s %s to %s: needs scope %s", request.method, request.path, caller.actor, scope)
        raise Problem(
            403,
            f"this needs the scope {scope}, which {holder} does not grant",
            code="insufficient_scope",
            required_scope=scope,
        )
    return caller


def requires(role: StaffRole):
    """Decorator form of require_role for a handler."""

    def decorate(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            require_role(request, role)
            return await handler(request)

        return checked

    return decorate


# --- cookies -------------------------------------------------------------------------------------


def cookie_is_secure(request: web.Request) -> bool:
    # The public URL in effect: staff may change it in the dashboard.
    return request.secure or request.app[STORAGE_KEY].settings.resolved_public_url.startswith("https://")


def _set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    # No Max-Age: the browser forgets it when it closes; the server ends the session on its own schedule.
    response.set_cookie(name, value, path="/", httponly=True, samesite="Strict", secure=cookie_is_secure(request))


def _clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict", secure=cookie_is_secure(request))


def _client_ip(request: web.Request) -> str:
    return (request.remote or "unknown")[:64]


def _login_csrf_token(request: web.Request) -> tuple[str, bool]:
    """The form's pre-session token: the cookie's when it has a good one, else a new one (True: set it)."""
    current = request.cookies.get(LOGIN_CSRF_COOKIE)
    return (current, False) if looks_like_token(current) else (new_token(), True)


def _login_csrf_ok(request: web.Request, form) -> bool:  # noqa: ANN001 - aiohttp's MultiDictProxy
    # Double submit: another site can make a browser post the form but cannot read or set the
    # cookie (SameSite=Strict, HttpOnly), so it cannot put the same value in the form.
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    return looks_like_token(cookie) and same_token(form.get(CSRF_FIELD), cookie)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _safe_next(value: object) -> str:
    """Only a staff page of this site: an open redirect would lend our sign-in page to phishing."""
    if (
        isinstance(value, str)
        and value.startswith(HOME)
        and "//" not in value
        and "\\" not in value
        and value.isprintable()
        and len(value) < 2000
    ):
        return value
    return HOME


# --- handlers --------------------------------------------------------------------------------------


async def to_home(request: web.Request) -> web.StreamResponse:
    return _redirect(HOME)


async def me(request: web.Request) -> web.StreamResponse:
    caller = request.get(TOKEN_CALLER_KEY)
    if caller is not None:  # a script with an API token: who it is and what it may do
        return web.json_response({"token": caller.actor, "scopes": sorted(caller.scopes)})
    identity = require_login(request)
    return web.json_response({"username": identity.username, "role": identity.role.value, "csrf_token": identity.csrf_token})


async def _login_form(
    request: web.Request, *, status: int = 200, error: str | None = None, username: str = "", next_path: str = ""
) -> web.Response:
    token, new = _login_csrf_token(request)
    response = staff_pages.html(
        request,
        "staff/login.html",
        csrf_token=token,
        error=error,
        username=username,
        next_path=next_path,
        setup_pending=await request.app[STAFF_AUTH_KEY].setup_still_open(),
        status=status,
    )
    if new:
        _set_cookie(request, response, LOGIN_CSRF_COOKIE, token)
    return response


async def login_page(request: web.Request) -> web.StreamResponse:
    next_path = _safe_next(request.query.get("next"))
    if request.get(IDENTITY_KEY) is not None:
        return _redirect(next_path)
    return await _login_form(request, next_path=next_path)


async def login(request: web.Request) -> web.StreamResponse:
    try:
        form = await read_form(request)
    except UploadRefusedError as exc:
        return _unreadable_form(request, exc)
    next_path = _safe_next(form.get("next"))
    username = form.get("username")
    password = form.get("password")
    if not _login_csrf_ok(request, form):
        log.warning("refused a sign-in form from %s without its CSRF token", _client_ip(request))
        return await _login_form(request, status=403, error=FORM_EXPIRED_MESSAGE, next_path=next_path)
    if not isinstance(username, str) or not isinstance(password, str):
        return await _login_form(request, status=400, error=FAILED_MESSAGE, next_path=next_path)
    outcome = await request.app[STAFF_AUTH_KEY].log_in(
        username, password, _client_ip(request), replacing=request.cookies.get(SESSION_COOKIE)
    )
    if outcome.result is LoginResult.SIGNED_IN:
        response = _redirect(next_path)
        _set_cookie(request, response, SESSION_COOKIE, outcome.session_token)
        return response
    if outcome.result is LoginResult.LOCKED:
        minutes = max(1, math.ceil(outcome.retry_after_s / 60))
        response = await _login_form(
            request,
            status=429,
            error=staff_pages.gettext(request, staff_text.LOCKED_MESSAGE) % {"minutes": minutes},
            username=username,
            next_path=next_path,
        )
        response.headers["Retry-After"] = str(outcome.retry_after_s)
        return response
    return await _login_form(request, status=401, error=FAILED_MESSAGE, username=username, next_path=next_path)


async def logout(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    await request.app[STAFF_AUTH_KEY].log_out(identity)
    response = _redirect(LOGIN)
    _clear_session_cookie(request, response)
    return response


def _not_found(request: web.Request) -> web.Response:
    return staff_pages.html(request, "staff/not_found.html", status=404)


def _setup_form(
    request: web.Request, setup_token: str, *, status: int = 200, error: str | None = None, username: str = ""
) -> web.Response:
    token, new = _login_csrf_token(request)
    response = staff_pages.html(
        request,
        "staff/setup.html",
        setup_token=setup_token,
        csrf_token=token,
        error=error,
        username=username,
        min_password_length=MIN_PASSWORD_LENGTH,
        status=status,
    )
    if new:
        _set_cookie(request, response, LOGIN_CSRF_COOKIE, token)
    return response


async def setup_page(request: web.Request) -> web.StreamResponse:
    auth = request.app[STAFF_AUTH_KEY]
    setup_token = request.query.get("token", "")
    if not auth.setup.matches(setup_token) or not await auth.setup_still_open():
        return _not_found(request)
    return _setup_form(request, setup_token)


async def setup(request: web.Request) -> web.StreamResponse:
    auth = request.app[STAFF_AUTH_KEY]
    try:
        form = await read_form(request)
    except UploadRefusedError as exc:
        return _unreadable_form(request, exc)
    setup_token = form.get("token")
    if not auth.setup.matches(setup_token) or not await auth.setup_still_open():
        return _not_found(request)
    username, password, again = (form.get(name) for name in ("username", "password", "password_again"))
    if not _login_csrf_ok(request, form):
        log.warning("refused a setup form from %s without its CSRF token", _client_ip(request))
        return _setup_form(request, setup_token, status=403, error=FORM_EXPIRED_MESSAGE)
    if not all(isinstance(value, str) for value in (username, password, again)):
        return _setup_form(request, setup_token, status=400, error=staff_text.FILL_IN_MESSAGE)
    if password != again:
        return _setup_form(request, setup_token, status=400, error=staff_text.PASSWORDS_DIFFER_MESSAGE, username=username)
    try:
        created = await auth.complete_setup(setup_token, username, password, _client_ip(request))
    except (InvalidUsernameError, WeakPasswordError, UserExistsError) as exc:
        return _setup_form(request, setup_token, status=400, error=f"{str(exc)[0].upper()}{str(exc)[1:]}.", username=username)
    if created is None:
        return _not_found(request)
    _, session_token = created
    response = _redirect(HOME)
    _set_cookie(request, response, SESSION_COOKIE, session_token)
    return response

"""Staff authentication, the part without I/O: usernames and password rules, Argon2id password
hashes, random tokens, and the policies for session expiry and sign-in lockouts.

The database side is db/staff.py; the web side (cookies, CSRF, the sign-in pages) web/staff.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from db.models import StaffRole
from kiosk.errors import ArtBoothError, ExitCode
from kiosk.settings import Settings

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
# Argon2 takes any length, but nobody types more; a megabyte "password" is only work for the server.
MAX_PASSWORD_LENGTH = 1024
USERNAME_RULE = "1-64 characters: lowercase letters, digits and . _ @ -, starting with a letter or digit"
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")

# secrets.token_urlsafe(32): 256 random bits as exactly 43 URL-safe base64 characters.
TOKEN_BYTES = 32
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")

# Argon2id lanes; part of the hash's parameters, so changing it rehashes every password.
HASH_PARALLELISM = 4
# Hashes computed at once: each takes password_hash_memory_mib and the cores for its time.
HASH_CONCURRENCY = 2


class WeakPasswordError(ArtBoothError):
    exit_code = ExitCode.WEAK_PASSWORD


class InvalidUsernameError(ArtBoothError):
    exit_code = ExitCode.USAGE


def normalize_username(raw: str) -> str:
    """Usernames are compared without case and surrounding blanks: 'Ada ' signs in as 'ada'."""
    return raw.strip().lower()


def check_username(raw: str) -> str:
    """The normalized username, or InvalidUsernameError."""
    username = normalize_username(raw)
    if not _USERNAME.fullmatch(username):
        raise InvalidUsernameError(f"invalid username {raw!r}: usernames are {USERNAME_RULE}")
    return username


def check_password(password: str, username: str) -> None:
    """Refuse a new password that is too short, too long or the username itself (WeakPasswordError)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPasswordError(f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters")
    if normalize_username(password) == username:
        raise WeakPasswordError("the password must not be the username")


def role_allows(role: StaffRole, required: StaffRole) -> bool:
    """Admins may do everything operators may."""
    return role is StaffRole.ADMIN or role is required


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    # Set when the password was right but its stored hash used other parameters: store this instead.
    rehashed: str | None = None


class Passwords:
    """Argon2id hashing (argon2-cffi), with the work done in threads, HASH_CONCURRENCY at a time."""

    def __init__(self, *, memory_mib: int, time_cost: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_mib * 1024, parallelism=HASH_PARALLELISM
        )
        self._slots: asyncio.Semaphore | None = None
        # Checked against when the username is unknown, so that costs what a wrong password costs.
        self._decoy: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        return cls(memory_mib=settings.password_hash_memory_mib, time_cost=settings.password_hash_time_cost)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> PasswordCheck:
        try:
            self._hasher.verify(stored_hash, password)
        except VerifyMismatchError:
            return PasswordCheck(ok=False)
        except InvalidHashError:
            log.error("a staff password hash in the database is not an Argon2 hash; that account cannot sign in")
            return PasswordCheck(ok=False)
        except VerificationError:
            return PasswordCheck(ok=False)
        rehashed = self._hasher.hash(password) if self._hasher.check_needs_rehash(stored_hash) else None
        return PasswordCheck(ok=True, rehashed=rehashed)

    def verify_decoy(self, password: str) -> PasswordCheck:
        """As long as verify() takes, and never ok: for unknown and disabled usernames."""
        if self._decoy is None:
            self._decoy = self._hasher.hash(secrets.token_urlsafe(TOKEN_BYTES))
        self.verify(self._decoy, password)
        return PasswordCheck(ok=False)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(HASH_CONCURRENCY)
        async with self._slots:
            yield

    async def hash_async(self, password: str) -> str:
        async with self._slot():
            return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, stored_hash: str | None, password: str) -> PasswordCheck:
        """verify(), or verify_decoy() when there is no hash to check against."""
        async with self._slot():
            if stored_hash is None:
                return await asyncio.to_thread(self.verify_decoy, password)
            return await asyncio.to_thread(self.verify, stored_hash, password)


def new_token() -> str:
    """256 random bits, URL- and cookie-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def looks_like_token(value: object) -> bool:
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def token_digest(token: str) -> str:
    """What is stored of a session id or setup token: a leaked database or memory dump hands out no session."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_token(given: object, expected: str) -> bool:
    """Constant-time comparison; anything that is not a string is simply unequal."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta
    # last_seen and the sliding expiry are written at most this often, not on every request.
    touch_interval: timedelta = timedelta(minutes=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(
            idle=timedelta(minutes=settings.staff_session_idle_minutes),
            absolute=timedelta(hours=settings.staff_session_hours),
        )

    def expiry(self, created_at: datetime, now: datetime) -> datetime:
        """Sliding: ``idle`` after the latest request, but never past ``absolute`` after sign-in."""
        return min(now + self.idle, created_at + self.absolute)

    def needs_touch(self, last_seen_at: datetime, now: datetime) -> bool:
        return now - last_seen_at >= self.touch_interval


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int
    max_failures_per_ip: int
    window: timedelta
    lockout: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> LockoutPolicy:
        return cls(
            max_failures=settings.login_max_failures,
            max_failures_per_ip=settings.login_max_failures_per_ip,
            window=timedelta(minutes=settings.login_failure_window_minutes),
            lockout=timedelta(minutes=settings.login_lockout_minutes),
        )

    @property
    def lookback(self) -> timedelta:
        """How far back failures can still matter at ``now``."""
        return self.window + self.lockout

    def locked_until(self, failures: Sequence[datetime], limit: int, now: datetime) -> datetime | None:
        """When the lock ends, if ``limit`` of these failures fell within one window and its lockout
        has not ended by ``now``; else None. Attempts refused while locked are not failures, so a
        lock ends ``lockout`` after the failure that started it."""
        times = sorted(failures)
        until = None
        for last in range(limit - 1, len(times)):
            if times[last] - times[last - limit + 1] <= self.window:
                until = times[last] + self.lockout
        return until if until is not None and until > now else None


class SetupToken:
    """The one-time token of the first-start setup: only its digest is kept, in memory."""

    def __init__(self) -> None:
        self._digest: str | None = None

    @property
    def pending(self) -> bool:
        return self._digest is not None

    def issue(self) -> str:
        token = new_token()
        self._digest = token_digest(token)
        return token

    def matches(self, token: object) -> bool:
        return self._digest is not None and looks_like_token(token) and same_token(token_digest(token), self._digest)

    def withdraw(self) -> None:
        self._digest = None


class KeyedLocks:
    """One asyncio lock per key (a username), kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]

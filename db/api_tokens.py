"""Bearer tokens for the REST API: created by an administrator in the dashboard, stored hashed,
limited to scopes, optionally expiring, revocable.

A token is ``abt_`` followed by 256 random bits (43 URL-safe characters), so it is recognisable
in a leaked file or a secret scanner. Only its SHA-256 is stored, with its first characters
(``prefix``) for telling tokens apart in the dashboard; the token itself is shown once, at creation.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from db.models import ApiTokenRow, StaffRole
from db.service import SessionFactory, _audit, _require_aware, _update_count
from kiosk.errors import ArtBoothError, ExitCode

TOKEN_PREFIX = "abt_"
_SECRET_BYTES = 32  # token_urlsafe(32): exactly 43 characters
_TOKEN_PATTERN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{43}")
# Shown in the dashboard: the fixed prefix and 8 random characters, too few to guess the rest from.
SHOWN_PREFIX_LENGTH = len(TOKEN_PREFIX) + 8
MAX_NAME_LENGTH = 100
# last_used_at is written at most this often per token, not on every request.
LAST_USED_INTERVAL = timedelta(minutes=1)

# Every scope a token can grant, with what it allows: the one list the API, its OpenAPI document
# and the dashboard read.
SCOPES: dict[str, str] = {
    "artworks:read": "list and read artworks",
    "artworks:write": "add, edit, reorder and delete artworks",
    "photos:read": "list and read photos",
    "photos:write": "delete photos",
    "compositions:write": "compose uploaded photos and store them",
    "kiosks:read": "list kiosks and their live statistics",
}

# What a signed-in staff user may do through the API: admins everything, operators the day-to-day.
ROLE_SCOPES: dict[StaffRole, frozenset[str]] = {
    StaffRole.ADMIN: frozenset(SCOPES),
    StaffRole.OPERATOR: frozenset(
        {"artworks:read", "photos:read", "photos:write", "compositions:write", "kiosks:read"}
    ),
}


class InvalidTokenRequestError(ArtBoothError):
    """A token cannot be created as asked (no name, unknown scope, bad expiry); the message says why."""

    exit_code = ExitCode.USAGE


class TokenState(str, enum.Enum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # malformed, never issued, or deleted


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiTokenRow) -> ApiToken:
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            scopes=tuple(row.scopes),
            created_by=row.created_by,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )

    def state(self, now: datetime) -> TokenState:
        if self.revoked_at is not None:
            return TokenState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return TokenState.EXPIRED
        return TokenState.ACTIVE


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    # The token in plain text: it exists only here, to be shown once; the database keeps its hash.
    secret: str


@dataclass(frozen=True)
class TokenCheck:
    state: TokenState
    token: ApiToken | None  # None only for UNKNOWN


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def looks_like_api_token(value: object) -> bool:
    return isinstance(value, str) and _TOKEN_PATTERN.fullmatch(value) is not None


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes in SCOPES order, or InvalidTokenRequestError naming the unknown ones."""
    wanted = set(scopes)
    unknown = sorted(wanted - SCOPES.keys())
    if unknown:
        raise InvalidTokenRequestError(
            f"unknown scope {', '.join(map(repr, unknown))}; the scopes are: {', '.join(SCOPES)}"
        )
    if not wanted:
        raise InvalidTokenRequestError("choose at least one scope")
    return tuple(scope for scope in SCOPES if scope in wanted)


async def create_token(
    session_factory: SessionFactory,
    *,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None,
    actor: str,
    now: datetime,
) -> CreatedToken:
    """A new token granting ``scopes`` until ``expires_at`` (None: until revoked)."""
    _require_aware(now)
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidTokenRequestError(f"name the token (1-{MAX_NAME_LENGTH} printable characters), e.g. after its integration")
    granted = check_scopes(scopes)
    if expires_at is not None:
        _require_aware(expires_at)
        if expires_at <= now:
            raise InvalidTokenRequestError("the expiry must lie in the future")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    row = ApiTokenRow(
        name=name,
        token_hash=token_hash(secret),
        prefix=secret[:SHOWN_PREFIX_LENGTH],
        scopes=list(granted),
        created_by=actor,
        created_at=now,
        last_used_at=None,
        expires_at=expires_at,
        revoked_at=None,
    )
    async with session_factory() as session, session.begin():
        session.add(row)
        await session.flush()
        _audit(
            session,
            at=now,
            actor=actor,
            action="api_token.create",
            subject=str(row.id),
            detail={"name": name, "prefix": row.prefix, "scopes": list(granted),
                    "expires_at": expires_at.isoformat() if expires_at else None},
        )
    return CreatedToken(token=ApiToken.from_row(row), secret=secret)


async def list_tokens(session_factory: SessionFactory) -> list[ApiToken]:
    """Every token, revoked and expired ones included, newest first."""
    query = select(ApiTokenRow).order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.id.desc())
    async with session_factory() as session:
        return [ApiToken.from_row(row) for row in (await session.scalars(query)).all()]


async def revoke_token(session_factory: SessionFactory, token_id: int, *, actor: str, now: datetime) -> bool:
    """Refuse the token from now on; False when there is no such token or it was revoked already."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        revoked = await _update_count(
            session,
            update(ApiTokenRow)
            .where(ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None))
            .values(revoked_at=now),
        )
        if revoked:
            _audit(session, at=now, actor=actor, action="api_token.revoke", subject=str(token_id))
    return revoked == 1


async def authenticate(session_factory: SessionFactory, secret: str, *, now: datetime) -> TokenCheck:
    """What the presented token is at ``now``; an active token's last use is noted (at most once a
    LAST_USED_INTERVAL)."""
    _require_aware(now)
    if not looks_like_api_token(secret):
        return TokenCheck(TokenState.UNKNOWN, None)
    async with session_factory() as session:
        row = await session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash(secret)))
    if row is None:
        return TokenCheck(TokenState.UNKNOWN, None)
    token = ApiToken.from_row(row)
    state = token.state(now)
    if state is TokenState.ACTIVE and (token.last_used_at is None or now - token.last_used_at >= LAST_USED_INTERVAL):
        async with session_factory() as session, session.begin():
            await _update_count(session, update(ApiTokenRow).where(ApiTokenRow.id == token.id).values(last_used_at=now))
    return TokenCheck(state, token)

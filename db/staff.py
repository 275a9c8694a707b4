"""Staff users, their sessions and sign-in attempts in the database.

Passwords arrive here already hashed and session ids already digested (kiosk/auth.py does
both): nothing in this module ever sees a secret a person typed or a browser holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import LoginAttemptRow, StaffRole, StaffSessionRow, StaffUserRow
from db.service import SessionFactory, _audit, _require_aware, _update_count
from kiosk.errors import ArtBoothError, ExitCode


class UserExistsError(ArtBoothError):
    exit_code = ExitCode.USER_EXISTS


class LastAdminError(ArtBoothError):
    """Refused: the change would leave no active administrator, and nobody could manage staff any more."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    role: StaffRole
    password_hash: str
    created_at: datetime
    disabled: bool

    @classmethod
    def from_row(cls, row: StaffUserRow) -> StaffUser:
        return cls(
            id=row.id,
            username=row.username,
            role=StaffRole(row.role),
            password_hash=row.password_hash,
            created_at=row.created_at,
            disabled=row.disabled,
        )


@dataclass(frozen=True)
class StaffSession:
    id: int
    user: StaffUser
    csrf_secret: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


async def count_users(session_factory: SessionFactory) -> int:
    async with session_factory() as session:
        return await session.scalar(select(func.count()).select_from(StaffUserRow))


async def get_user(session_factory: SessionFactory, username: str) -> StaffUser | None:
    async with session_factory() as session:
        row = await session.scalar(select(StaffUserRow).where(StaffUserRow.username == username))
    return StaffUser.from_row(row) if row is not None else None


async def create_user(
    session_factory: SessionFactory,
    *,
    username: str,
    password_hash: str,
    role: StaffRole,
    actor: str,
    now: datetime,
    only_if_first: bool = False,
) -> StaffUser | None:
    """Add a staff user (UserExistsError when the name is taken). With ``only_if_first`` (the
    first-start setup) nothing is added, and None returned, once any staff user exists."""
    _require_aware(now)
    row = StaffUserRow(username=username, password_hash=password_hash, role=role.value, created_at=now, disabled=False)
    try:
        async with session_factory() as session, session.begin():
            if only_if_first and await session.scalar(select(func.count()).select_from(StaffUserRow)):
                return None
            session.add(row)
            await session.flush()
            _audit(session, at=now, actor=actor, action="staff.create_user", subject=username, detail={"role": role.value})
    except IntegrityError:
        raise UserExistsError(f"a staff user named {username!r} exists already") from None
    return StaffUser.from_row(row)


async def login_failures(
    session_factory: SessionFactory, *, username: str, client_ip: str, since: datetime
) -> tuple[list[datetime], list[datetime]]:
    """Failed sign-ins since ``since``: for ``username`` (only those after its latest successful
    sign-in), and from ``client_ip`` (all of them, whichever usernames they tried)."""
    _require_aware(since)
    failed = LoginAttemptRow.succeeded.is_(False)
    async with session_factory() as session:
        last_success = await session.scalar(
            select(func.max(LoginAttemptRow.at)).where(
                LoginAttemptRow.username == username, LoginAttemptRow.succeeded.is_(True), LoginAttemptRow.at >= since
            )
        )
        by_user_conditions = [LoginAttemptRow.username == username, failed, LoginAttemptRow.at >= since]
        if last_success is not None:
            by_user_conditions.append(LoginAttemptRow.at > last_success)
        by_user = list(
            await session.scalars(select(LoginAttemptRow.at).where(*by_user_conditions).order_by(LoginAttemptRow.at))
        )
        by_ip = list(
            await session.scalars(
                select(LoginAttemptRow.at)
                .where(LoginAttemptRow.client_ip == client_ip, failed, LoginAttemptRow.at >= since)
                .order_by(LoginAttemptRow.at)
            )
        )
    return by_user, by_ip


async def record_login_failure(
    session_factory: SessionFactory,
    *,
    username: str,
    client_ip: str,
    reason: str,
    locks: str | None,
    now: datetime,
    forget_before: datetime,
) -> None:
    """Note a failed sign-in, in the attempts the lockout counts and in the audit log; ``locks``
    ("username" or "client_ip") when this failure starts a lockout. Attempts older than
    ``forget_before`` no longer matter and are deleted."""
    _require_aware(now)
    detail: dict[str, Any] = {"client_ip": client_ip, "reason": reason}
    async with session_factory() as session, session.begin():
        await session.execute(delete(LoginAttemptRow).where(LoginAttemptRow.at < forget_before))
        session.add(LoginAttemptRow(at=now, username=username, client_ip=client_ip, succeeded=False))
        _audit(session, at=now, actor=username, action="staff.login_failed", subject=username, detail=detail)
        if locks is not None:
            _audit(session, at=now, actor=username, action="staff.lockout", subject=username, detail=detail | {"locks": locks})


async def record_lockout_refusal(
    session_factory: SessionFactory, *, username: str, client_ip: str, locked_until: datetime, now: datetime
) -> None:
    """Audit a sign-in refused unchecked because of a lockout (not counted as a failure, so the lock ends on time)."""
    async with session_factory() as session, session.begin():
        _audit(
            session,
            at=now,
            actor=username,
            action="staff.login_refused",
            subject=username,
            detail={"client_ip": client_ip, "locked_until": locked_until.isoformat()},
        )


async def open_session(
    session_factory: SessionFactory,
    *,
    user: StaffUser,
    token_hash: str,
    csrf_secret: str,
    client_ip: str,
    now: datetime,
    expires_at: datetime,
    replacing_hash: str | None = None,
    new_password_hash: str | None = None,
    action: str = "staff.login",
) -> StaffSession:
    """Start a session for ``user`` after a successful sign-in, in one transaction with what goes
    with it: the attempt recorded (it clears the username's failures), the audit entry, the
    password's new hash when it was rehashed, the session it replaces ended, expired ones deleted."""
    _require_aware(now)
    row = StaffSessionRow(
        token_hash=token_hash,
        user_id=user.id,
        csrf_secret=csrf_secret,
        created_at=now,
        last_seen_at=now,
        expires_at=expires_at,
    )
    async with session_factory() as session, session.begin():
        await session.execute(delete(StaffSessionRow).where(StaffSessionRow.expires_at <= now))
        if replacing_hash is not None:
            await session.execute(delete(StaffSessionRow).where(StaffSessionRow.token_hash == replacing_hash))
        if new_password_hash is not None:
            await session.execute(
                update(StaffUserRow).where(StaffUserRow.id == user.id).values(password_hash=new_password_hash)
            )
        session.add(row)
        session.add(LoginAttemptRow(at=now, username=user.username, client_ip=client_ip, succeeded=True))
        detail = {"client_ip": client_ip} | ({"rehashed": True} if new_password_hash is not None else {})
        _audit(session, at=now, actor=user.username, action=action, subject=user.username, detail=detail)
    return StaffSession(
        id=row.id,
        user=user,
        csrf_secret=csrf_secret,
        created_at=now,
        last_seen_at=now,
        expires_at=expires_at,
    )


async def find_session(
    session_factory: SessionFactory, token_hash: str, *, now: datetime, started_after: datetime
) -> StaffSession | None:
    """The live session with this id digest: not expired, started after ``started_after`` (the
    absolute limit, however the sliding expiry was moved), and its user not disabled."""
    _require_aware(now)
    query = (
        select(StaffSessionRow, StaffUserRow)
        .join(StaffUserRow, StaffUserRow.id == StaffSessionRow.user_id)
        .where(
            StaffSessionRow.token_hash == token_hash,
            StaffSessionRow.expires_at > now,
            StaffSessionRow.created_at > started_after,
            StaffUserRow.disabled.is_(False),
        )
    )
    async with session_factory() as session:
        found = (await session.execute(query)).one_or_none()
    if found is None:
        return None
    row, user_row = found
    return StaffSession(
        id=row.id,
        user=StaffUser.from_row(user_row),
        csrf_secret=row.csrf_secret,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
    )


async def touch_session(session_factory: SessionFactory, session_id: int, *, now: datetime, expires_at: datetime) -> None:
    """Note activity: the sliding expiry moves on."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        await session.execute(
            update(StaffSessionRow)
            .where(StaffSessionRow.id == session_id)
            .values(last_seen_at=now, expires_at=expires_at)
            .execution_options(synchronize_session=False)
        )


async def end_session(session_factory: SessionFactory, session_id: int, *, actor: str, now: datetime) -> bool:
    """Sign out: the session row is deleted, so its cookie is worthless from now on."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        ended = await _update_count(session, delete(StaffSessionRow).where(StaffSessionRow.id == session_id))
        if ended:
            _audit(session, at=now, actor=actor, action="staff.logout", subject=actor)
    return ended == 1


# --- managing staff (the dashboard's Users section) -------------------------------------------------


async def list_users(session_factory: SessionFactory) -> list[StaffUser]:
    async with session_factory() as session:
        rows = (await session.scalars(select(StaffUserRow).order_by(StaffUserRow.username))).all()
    return [StaffUser.from_row(row) for row in rows]


async def change_role(session_factory: SessionFactory, username: str, role: StaffRole, *, actor: str, now: datetime) -> bool:
    """Give the user ``role``; False when there is no such user. LastAdminError when it would demote the last active admin."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        user = await _user_row(session, username)
        if user is None:
            return False
        if user.role == role.value:
            return True
        if role is not StaffRole.ADMIN:
            await _keep_an_admin(session, user)
        user.role = role.value
        _audit(session, at=now, actor=actor, action="staff.change_role", subject=username, detail={"role": role.value})
    return True


async def set_disabled(session_factory: SessionFactory, username: str, disabled: bool, *, actor: str, now: datetime) -> bool:
    """Disable the user (their sessions end) or enable them again; False when there is no such user.
    LastAdminError when it would disable the last active admin."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        user = await _user_row(session, username)
        if user is None:
            return False
        if user.disabled == disabled:
            return True
        if disabled:
            await _keep_an_admin(session, user)
            await session.execute(delete(StaffSessionRow).where(StaffSessionRow.user_id == user.id))
        user.disabled = disabled
        _audit(session, at=now, actor=actor, action="staff.disable" if disabled else "staff.enable", subject=username)
    return True


async def set_password(session_factory: SessionFactory, username: str, password_hash: str, *, actor: str, now: datetime) -> bool:
    """An administrator's reset of the user's password: their sessions end, so whoever held one must
    sign in with the new password. False when there is no such user."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        user = await _user_row(session, username)
        if user is None:
            return False
        user.password_hash = password_hash
        await session.execute(delete(StaffSessionRow).where(StaffSessionRow.user_id == user.id))
        _audit(session, at=now, actor=actor, action="staff.reset_password", subject=username)
    return True


async def _user_row(session: AsyncSession, username: str) -> StaffUserRow | None:
    return await session.scalar(select(StaffUserRow).where(StaffUserRow.username == username).with_for_update())


async def _keep_an_admin(session: AsyncSession, user: StaffUserRow) -> None:
    """LastAdminError unless an active admin other than ``user`` remains. The admins' rows are locked
    (PostgreSQL; SQLite lets one writer in at a time), so two admins demoting each other at once
    cannot both succeed."""
    admins = await session.scalars(
        select(StaffUserRow.id)
        .where(StaffUserRow.role == StaffRole.ADMIN.value, StaffUserRow.disabled.is_(False))
        .with_for_update()
    )
    if not [admin_id for admin_id in admins if admin_id != user.id]:
        raise LastAdminError(
            f"the last active administrator ({user.username}) cannot be demoted or disabled; "
            "make another user an administrator first"
        )

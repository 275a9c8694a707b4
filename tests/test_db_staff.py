"""Staff users, sessions and sign-in attempts in the database: on a SQLite file, and on
PostgreSQL when ARTBOOTH_TEST_POSTGRES_URL is set (see test_db_storage)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, select

from db import staff
from db.engine import create_engine, create_session_factory
from db.migrate import upgrade
from db.models import AuditRow, LoginAttemptRow, StaffRole, StaffSessionRow, StaffUserRow
from kiosk.auth import LockoutPolicy, Passwords, SessionPolicy, new_token, token_digest

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
async def sessions(empty_database_url):
    await upgrade(empty_database_url)
    engine = create_engine(empty_database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def test_users_are_unique_and_the_first_start_setup_only_creates_the_first(sessions):
    created = await staff.create_user(
        sessions, username="ada", password_hash="$argon2id$x", role=StaffRole.ADMIN, actor="test", now=NOW
    )
    assert (created.username, created.role, created.disabled) == ("ada", StaffRole.ADMIN, False)
    with pytest.raises(staff.UserExistsError, match="exists already"):
        await staff.create_user(sessions, username="ada", password_hash="h", role=StaffRole.OPERATOR, actor="test", now=NOW)
    assert await staff.create_user(
        sessions, username="eve", password_hash="h", role=StaffRole.ADMIN, actor="setup", now=NOW, only_if_first=True
    ) is None
    assert await staff.count_users(sessions) == 1
    assert (await staff.get_user(sessions, "ada")).id == created.id and await staff.get_user(sessions, "eve") is None


async def test_sessions_are_found_by_digest_only_while_live_and_go_with_their_user(sessions):
    user = await staff.create_user(sessions, username="otto", password_hash="h", role=StaffRole.OPERATOR, actor="t", now=NOW)
    policy = SessionPolicy(idle=timedelta(minutes=60), absolute=timedelta(hours=12))
    token = new_token()
    opened = await staff.open_session(
        sessions, user=user, token_hash=token_digest(token), csrf_secret=new_token(), client_ip="::1",
        now=NOW, expires_at=policy.expiry(NOW, NOW),
    )
    later = NOW + timedelta(minutes=30)
    found = await staff.find_session(sessions, token_digest(token), now=later, started_after=later - policy.absolute)
    assert found.id == opened.id and found.user.username == "otto" and found.expires_at == NOW + timedelta(minutes=60)
    await staff.touch_session(sessions, found.id, now=later, expires_at=policy.expiry(found.created_at, later))
    at_75 = NOW + timedelta(minutes=75)
    assert (await staff.find_session(sessions, token_digest(token), now=at_75, started_after=at_75 - policy.absolute)).last_seen_at == later
    at_91 = NOW + timedelta(minutes=91)
    assert await staff.find_session(sessions, token_digest(token), now=at_91, started_after=at_91 - policy.absolute) is None
    assert await staff.find_session(sessions, token, now=later, started_after=later - policy.absolute) is None  # the id itself is not stored

    assert await staff.end_session(sessions, opened.id, actor="otto", now=later)
    assert not await staff.end_session(sessions, opened.id, actor="otto", now=later)
    another = await staff.open_session(
        sessions, user=user, token_hash=token_digest(new_token()), csrf_secret=new_token(), client_ip="::1",
        now=NOW, expires_at=NOW + timedelta(hours=1),
    )
    async with sessions() as session, session.begin():
        await session.execute(delete(StaffUserRow).where(StaffUserRow.id == user.id))
    async with sessions() as session:
        assert await session.get(StaffSessionRow, another.id) is None  # ON DELETE CASCADE
        actions = list(await session.scalars(select(AuditRow.action).order_by(AuditRow.id)))
    assert actions == ["staff.create_user", "staff.login", "staff.logout", "staff.login"]


async def test_failures_count_per_username_since_its_last_success_and_per_address(sessions):
    user = await staff.create_user(sessions, username="ada", password_hash="h", role=StaffRole.ADMIN, actor="t", now=NOW)
    policy = LockoutPolicy(max_failures=3, max_failures_per_ip=5, window=timedelta(minutes=15), lockout=timedelta(minutes=15))

    async def fail(username: str, ip: str, minute: int, locks: str | None = None) -> None:
        await staff.record_login_failure(
            sessions, username=username, client_ip=ip, reason="test", locks=locks,
            now=NOW + timedelta(minutes=minute), forget_before=NOW + timedelta(minutes=minute) - policy.lookback,
        )

    await fail("ada", "10.0.0.1", 0)
    await fail("ada", "10.0.0.2", 1)
    await staff.open_session(
        sessions, user=user, token_hash=token_digest(new_token()), csrf_secret=new_token(), client_ip="10.0.0.1",
        now=NOW + timedelta(minutes=2), expires_at=NOW + timedelta(hours=1),
    )
    await fail("ada", "10.0.0.1", 3)
    await fail("nobody", "10.0.0.1", 4, locks="client_ip")
    by_user, by_ip = await staff.login_failures(sessions, username="ada", client_ip="10.0.0.1", since=NOW - timedelta(minutes=30))
    assert by_user == [NOW + timedelta(minutes=3)]  # the two before the sign-in no longer count
    assert by_ip == [NOW, NOW + timedelta(minutes=3), NOW + timedelta(minutes=4)]
    assert policy.locked_until(by_ip + [NOW + timedelta(minutes=5)] * 2, policy.max_failures_per_ip, NOW + timedelta(minutes=5)) == NOW + timedelta(minutes=20)

    # Attempts older than the lookback are forgotten by the next failure.
    await fail("ada", "10.0.0.9", 60)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(LoginAttemptRow)) == 1
        lockouts = list(await session.scalars(select(AuditRow).where(AuditRow.action == "staff.lockout")))
    assert [(e.subject, e.detail) for e in lockouts] == [("nobody", {"client_ip": "10.0.0.1", "reason": "test", "locks": "client_ip"})]


def test_lockout_policy_counts_failures_within_one_window():
    policy = LockoutPolicy(max_failures=3, max_failures_per_ip=10, window=timedelta(minutes=15), lockout=timedelta(minutes=15))
    minutes = lambda *ms: [NOW + timedelta(minutes=m) for m in ms]  # noqa: E731
    assert policy.locked_until(minutes(0, 10, 20, 30), 3, NOW + timedelta(minutes=31)) is None  # never 3 within 15 minutes
    assert policy.locked_until(minutes(0, 5, 15), 3, NOW + timedelta(minutes=16)) == NOW + timedelta(minutes=30)
    assert policy.locked_until(minutes(0, 5, 15), 3, NOW + timedelta(minutes=30)) is None  # over
    assert policy.locked_until(minutes(0, 1), 3, NOW + timedelta(minutes=2)) is None


def test_passwords_verify_rehash_and_refuse_decoys():
    cheap, dearer = Passwords(memory_mib=8, time_cost=1), Passwords(memory_mib=8, time_cost=2)
    stored = cheap.hash("a long passphrase")
    assert stored.startswith("$argon2id$v=19$m=8192,t=1,p=4$") and "a long passphrase" not in stored
    assert cheap.verify(stored, "a long passphrase").ok and cheap.verify(stored, "a long passphrase").rehashed is None
    assert not cheap.verify(stored, "a long passphrasE").ok
    assert not cheap.verify("not a hash", "a long passphrase").ok
    check = dearer.verify(stored, "a long passphrase")
    assert check.ok and check.rehashed.startswith("$argon2id$v=19$m=8192,t=2,p=4$")
    assert dearer.verify(check.rehashed, "a long passphrase").rehashed is None
    assert not cheap.verify_decoy("a long passphrase").ok

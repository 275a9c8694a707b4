"""Booth pairing in the database: the credential each registered kiosk's screen holds, and the
one-time pairing code that hands it over.

Only SHA-256 digests are stored (web/kiosk.py makes the secrets and digests them with
kiosk.auth.token_digest): a leaked database pairs no booth and lets nobody act as one. A kiosk
row is made only by staff (service.register_kiosk); a booth's requests never create one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update

from db.models import KioskRow
from db.service import SessionFactory, _audit, _require_aware, _update_count
from kiosk.auth import same_token
from kiosk.errors import KioskNotFoundError


@dataclass(frozen=True)
class BoothAccess:
    """What a booth's request is checked against."""

    kiosk_id: str
    # None while the kiosk is not paired (never, or revoked).
    credential_hash: str | None


async def access(session_factory: SessionFactory, kiosk_id: str) -> BoothAccess | None:
    """The kiosk's stored credential digest; None when no such kiosk is registered."""
    async with session_factory() as session:
        row = await session.get(KioskRow, kiosk_id)
    return BoothAccess(kiosk_id, row.credential_hash) if row is not None else None


async def start_pairing(
    session_factory: SessionFactory, kiosk_id: str, *, code_hash: str, expires_at: datetime, actor: str, now: datetime
) -> None:
    """Note a new pairing code for the kiosk (a previous, unused one stops working); the booth's
    current credential keeps working until the code is used. KioskNotFoundError for an unknown kiosk."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        row = await session.get(KioskRow, kiosk_id, with_for_update=True)
        if row is None:
            raise KioskNotFoundError(f"no kiosk {kiosk_id!r}; register it first")
        row.pairing_code_hash = code_hash
        row.pairing_expires_at = expires_at
        _audit(session, at=now, actor=actor, action="kiosk.pair", subject=kiosk_id, detail={"expires_at": expires_at.isoformat()})


async def complete_pairing(
    session_factory: SessionFactory, kiosk_id: str, *, code_hash: str, credential_hash: str, now: datetime
) -> bool:
    """Exchange a pending, unexpired pairing code for the new credential (which replaces the
    booth's old one); the code is spent. False when the code is wrong, used or expired."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        row = await session.get(KioskRow, kiosk_id, with_for_update=True)
        if (
            row is None
            or row.pairing_code_hash is None
            or row.pairing_expires_at is None
            or row.pairing_expires_at <= now
            or not same_token(code_hash, row.pairing_code_hash)
        ):
            return False
        row.credential_hash = credential_hash
        row.paired_at = now
        row.pairing_code_hash = None
        row.pairing_expires_at = None
        _audit(session, at=now, actor=f"booth:{kiosk_id}"[:64], action="kiosk.paired", subject=kiosk_id)
    return True


async def revoke(session_factory: SessionFactory, kiosk_id: str, *, actor: str, now: datetime) -> None:
    """Forget the booth's credential and any pending pairing code: its screen is refused from now
    on until it is paired again. KioskNotFoundError for an unknown kiosk."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        row = await session.get(KioskRow, kiosk_id, with_for_update=True)
        if row is None:
            raise KioskNotFoundError(f"no kiosk {kiosk_id!r}")
        was_paired = row.credential_hash is not None
        row.credential_hash = None
        row.paired_at = None
        row.pairing_code_hash = None
        row.pairing_expires_at = None
        _audit(session, at=now, actor=actor, action="kiosk.revoke", subject=kiosk_id, detail={"was_paired": was_paired})


async def note_seen(session_factory: SessionFactory, kiosk_id: str, *, now: datetime) -> bool:
    """Note that the (registered) booth is alive; False when no such kiosk exists. Never creates one."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        updated = await _update_count(session, update(KioskRow).where(KioskRow.id == kiosk_id).values(last_seen=now))
    return updated > 0

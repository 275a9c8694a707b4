"""The museum's logo, in the database every node and worker shares, and its audited changes (its
name and colours are settings, audited by db/overrides.py; kiosk/museum.py checks and uses the logo)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from db.models import MuseumLogoRow
from db.notify import announce
from db.service import SessionFactory, _audit, _require_aware

LOGO_SUBJECT = "museum_logo"
_LOGO_ROW = 1


async def load_logo(session_factory: SessionFactory) -> bytes | None:
    async with session_factory() as session:
        return await session.scalar(select(MuseumLogoRow.png).where(MuseumLogoRow.id == _LOGO_ROW))


async def change_logo(
    session_factory: SessionFactory,
    png: bytes | None,
    *,
    action: str,
    detail: dict[str, Any],
    actor: str,
    now: datetime,
    notify: str | None = None,
) -> None:
    """Store ``png`` as the logo (None: remove it) with its audit entry, and ``NOTIFY`` on the channel
    ``notify`` (db/notify.py: the settings', so other nodes take the new identity up) in the same
    transaction."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        await session.execute(delete(MuseumLogoRow))
        if png is not None:
            session.add(MuseumLogoRow(id=_LOGO_ROW, png=png, updated_at=now))
        _audit(session, at=now, actor=actor, action=action, subject=LOGO_SUBJECT, detail=detail)
        if notify is not None:
            await announce(session, notify)

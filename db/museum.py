"""The museum's logo changes, audited (kiosk/museum.py keeps the file; its name and colours are
settings, audited by db/overrides.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from db.service import SessionFactory, _audit, _require_aware

LOGO_SUBJECT = "museum_logo"


async def change_logo(
    session_factory: SessionFactory,
    write: Callable[[], Any],
    *,
    action: str,
    detail: dict[str, Any],
    actor: str,
    now: datetime,
) -> None:
    """Run ``write`` (storing or removing the logo file; blocking, so it runs in a thread) inside the
    transaction of its audit entry: a write that fails leaves no entry, an audit that cannot be
    stored raises before the file changes."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        _audit(session, at=now, actor=actor, action=action, subject=LOGO_SUBJECT, detail=detail)
        await session.flush()
        await asyncio.to_thread(write)

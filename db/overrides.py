"""Settings staff changed in the dashboard (the service_settings table).

Values are stored as plain JSON (the coerced setting: text, number or true/false) and applied on
top of the settings file and environment with kiosk.settings.Settings.with_overrides, which
checks them as it checks environment values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from db.models import ServiceSettingRow
from db.notify import announce
from db.service import SessionFactory, _audit, _require_aware


async def load_overrides(session_factory: SessionFactory) -> dict[str, Any]:
    """Every setting staff changed, by field name."""
    async with session_factory() as session:
        rows = (await session.scalars(select(ServiceSettingRow))).all()
    return {row.key: row.value for row in rows}


async def save_overrides(
    session_factory: SessionFactory,
    *,
    changes: Mapping[str, Any],
    resets: Iterable[str] = (),
    actor: str,
    now: datetime,
    notify: str | None = None,
) -> None:
    """Store ``changes`` (field name -> JSON value) and forget ``resets`` (back to the file or
    environment value), in one transaction with their audit entries and, on PostgreSQL, a
    ``NOTIFY`` on the channel ``notify`` (db/notify.py): other nodes hear of it when it is committed."""
    _require_aware(now)
    resets = sorted(set(resets) - set(changes))
    async with session_factory() as session, session.begin():
        for key, value in sorted(changes.items()):
            row = await session.get(ServiceSettingRow, key)
            if row is None:
                session.add(ServiceSettingRow(key=key, value=value, updated_at=now, updated_by=actor))
            elif row.value != value:
                row.value, row.updated_at, row.updated_by = value, now, actor
            else:
                continue
            _audit(session, at=now, actor=actor, action="settings.change", subject=key, detail={"value": value})
        for key in resets:
            deleted = await session.execute(delete(ServiceSettingRow).where(ServiceSettingRow.key == key))
            if deleted.rowcount:  # type: ignore[attr-defined]
                _audit(session, at=now, actor=actor, action="settings.reset", subject=key)
        if notify is not None:
            await announce(session, notify)

"""Where the booths were last seen, shared by every serve node through the database.

One kiosk_presence row per booth and node: when that node last saw the booth, by the database's
clock (the one all nodes share; theirs may disagree), and that node's small report of it. Each
node writes its own booths' rows (kiosk/booths.py bounds how often) and reads every row, so every
node's dashboard shows every booth, wherever the booth's heartbeats go. Capture counts are read
from the photos table, which every node's captures reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from db.models import KioskPresenceRow, KioskRow, PhotoRow, database_now
from db.service import SessionFactory, _update_count


@dataclass(frozen=True)
class SeenBooth:
    """A booth as the node that saw it last reported it."""

    node: str
    # By the database's clock, when it was read.
    seconds_ago: float
    stats: dict[str, Any]


@dataclass(frozen=True)
class SharedBooths:
    """Every booth's presence and its captures since a moment, as read from the database."""

    seen: dict[str, SeenBooth] = field(default_factory=dict)
    captures: dict[str, int] = field(default_factory=dict)


async def note_presence(session_factory: SessionFactory, kiosk_id: str, *, node: str, stats: dict[str, Any]) -> None:
    """Note that ``node`` sees the (registered) booth now, with its report; the kiosk's own "last
    seen" (the dashboard's) moves with it. Nothing happens for a kiosk that does not exist."""
    async with session_factory() as session, session.begin():
        if not await _update_count(session, update(KioskRow).where(KioskRow.id == kiosk_id).values(last_seen=database_now())):
            return
        written = update(KioskPresenceRow).where(KioskPresenceRow.kiosk_id == kiosk_id, KioskPresenceRow.node == node)
        # Only this node writes its rows, one at a time per booth (kiosk/booths.py), so update-or-insert cannot race.
        if not await _update_count(session, written.values(last_seen=database_now(), stats=stats)):
            session.add(KioskPresenceRow(kiosk_id=kiosk_id, node=node, last_seen=database_now(), stats=stats))


async def forget_presence(session_factory: SessionFactory, kiosk_id: str) -> None:
    """The booth counts as offline on every node until it checks in again (staff cut its screen off)."""
    async with session_factory() as session, session.begin():
        await session.execute(delete(KioskPresenceRow).where(KioskPresenceRow.kiosk_id == kiosk_id))


async def read_shared_booths(session_factory: SessionFactory, *, captures_since: datetime) -> SharedBooths:
    """Every booth's latest presence, on any node, and how many photos each booth made since ``captures_since``."""
    async with session_factory() as session, session.begin():
        now = await session.scalar(select(database_now()))
        seen: dict[str, SeenBooth] = {}
        for row in await session.scalars(select(KioskPresenceRow).order_by(KioskPresenceRow.last_seen)):
            # Ordered oldest first: the node that saw the booth last wins.
            seen[row.kiosk_id] = SeenBooth(row.node, max((now - row.last_seen).total_seconds(), 0.0), row.stats)
        counted = await session.execute(
            select(PhotoRow.kiosk_id, func.count())
            .where(PhotoRow.kiosk_id.is_not(None), PhotoRow.created_at >= captures_since)
            .group_by(PhotoRow.kiosk_id)
        )
        captures = {kiosk_id: count for kiosk_id, count in counted}
    return SharedBooths(seen=seen, captures=captures)

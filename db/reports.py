"""What the staff dashboard shows, read from the database: the overview's figures, the links of
the photos in the gallery, and the audit log.

Days are UTC days (00:00 to 24:00 UTC), as every time in the database is UTC; the dashboard
says so next to its figures. Photos deleted since (by visitors, staff or retention) are not
counted: the photos table is the only record of captures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import func, select

from db.models import AuditRow, DownloadLinkRow, PhotoRow, PhotoStatus
from db.service import LinkInfo, SessionFactory, _require_aware

OVERVIEW_DAYS = 7


@dataclass(frozen=True)
class Overview:
    # (UTC day, photos taken that day) for the last OVERVIEW_DAYS days, oldest first, today last.
    captures_by_day: list[tuple[date, int]]
    # Time the capture pipeline took per photo (the sum of its stages) over those days; None without photos.
    pipeline_p50_ms: float | None
    pipeline_p95_ms: float | None

    @property
    def captures_today(self) -> int:
        return self.captures_by_day[-1][1]

    @property
    def captures_in_period(self) -> int:
        return sum(count for _, count in self.captures_by_day)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


async def overview(session_factory: SessionFactory, *, now: datetime, days: int = OVERVIEW_DAYS) -> Overview:
    """Photos per UTC day for the ``days`` days up to and including ``now``'s, and pipeline time percentiles."""
    _require_aware(now)
    today = now.astimezone(timezone.utc).date()
    first_day = today - timedelta(days=days - 1)
    start = datetime.combine(first_day, time.min, tzinfo=timezone.utc)
    query = select(PhotoRow.created_at, PhotoRow.timings).where(
        PhotoRow.created_at >= start, PhotoRow.status == PhotoStatus.READY.value
    )
    async with session_factory() as session:
        found = (await session.execute(query)).all()
    counts = {first_day + timedelta(days=n): 0 for n in range(days)}
    pipeline_ms = []
    for created_at, timings in found:
        day = created_at.astimezone(timezone.utc).date()
        if day in counts:  # a clock set back can have put photos in the future
            counts[day] += 1
        stages = [value for value in (timings or {}).values() if isinstance(value, (int, float))]
        if stages:
            pipeline_ms.append(float(sum(stages)))
    pipeline_ms.sort()
    return Overview(
        captures_by_day=sorted(counts.items()),
        pipeline_p50_ms=_percentile(pipeline_ms, 50),
        pipeline_p95_ms=_percentile(pipeline_ms, 95),
    )


def _percentile(ordered: list[float], percent: float) -> float | None:
    """The nearest-rank percentile: a value some photo really took."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


async def links_of(session_factory: SessionFactory, photo_ids: Iterable[str]) -> dict[str, list[LinkInfo]]:
    """The download links of each photo, oldest first (a photo with none is absent)."""
    ids = list(photo_ids)
    if not ids:
        return {}
    query = select(DownloadLinkRow).where(DownloadLinkRow.photo_id.in_(ids)).order_by(DownloadLinkRow.id)
    links: dict[str, list[LinkInfo]] = {}
    async with session_factory() as session:
        for row in (await session.scalars(query)).all():
            links.setdefault(row.photo_id, []).append(LinkInfo.from_row(row))
    return links


async def list_audit(
    session_factory: SessionFactory,
    *,
    action: str | None = None,
    actor: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    """Audit entries, newest first: the page of ``limit`` from ``offset``, and how many match in all."""
    if limit < 1 or offset < 0:
        raise ValueError(f"limit must be at least 1 and offset at least 0, not {limit} and {offset}")
    conditions = []
    if action:
        conditions.append(AuditRow.action == action)
    if actor:
        conditions.append(AuditRow.actor == actor)
    page = select(AuditRow).where(*conditions).order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit).offset(offset)
    async with session_factory() as session:
        total = await session.scalar(select(func.count()).select_from(AuditRow).where(*conditions))
        rows = (await session.scalars(page)).all()
    entries = [
        AuditEntry(id=row.id, at=row.at, actor=row.actor, action=row.action, subject=row.subject, detail=row.detail or {})
        for row in rows
    ]
    return entries, total


async def audit_actions(session_factory: SessionFactory) -> list[str]:
    """Every action name the audit log holds, for its filter."""
    async with session_factory() as session:
        return list(await session.scalars(select(AuditRow.action).distinct().order_by(AuditRow.action)))

"""Example photos for a booth's attract screen (issue 13): the few most recent photos taken at that
booth that are still there to be shown. Only composed results are ever named (never a visitor's raw
camera photo), and a photo whose download link was withdrawn is never an example: withdrawing says
the photo should not be seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, exists, select

from db.models import DownloadLinkRow, PhotoRow, PhotoStatus
from db.service import SessionFactory, _require_aware


async def example_photos(
    session_factory: SessionFactory, kiosk_id: str, *, taken_since: datetime | None, limit: int
) -> dict[str, str]:
    """Photo id -> its composed result's store key, newest first: taken at ``kiosk_id``, at or after
    ``taken_since`` (the retention's cutoff; None: retention keeps photos forever), not being
    deleted, none of its links withdrawn."""
    conditions = [
        PhotoRow.kiosk_id == kiosk_id,
        PhotoRow.status == PhotoStatus.READY.value,
        ~exists().where(and_(DownloadLinkRow.photo_id == PhotoRow.id, DownloadLinkRow.revoked.is_(True))),
    ]
    if taken_since is not None:
        _require_aware(taken_since)
        conditions.append(PhotoRow.created_at >= taken_since)
    query = (
        select(PhotoRow.id, PhotoRow.result_key)
        .where(*conditions)
        .order_by(PhotoRow.created_at.desc(), PhotoRow.id)
        .limit(limit)
    )
    async with session_factory() as session:
        rows = (await session.execute(query)).all()
    return {photo_id: result_key for photo_id, result_key in rows}

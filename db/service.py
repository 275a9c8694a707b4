"""Saving, finding, downloading and deleting compositions; artworks and kiosks in the database.

The invariant: no photo row without its files, no files without a photo row. Files are written
before the row that refers to them is committed and deleted when that commit fails; a photo
being deleted is first hidden (status "deleting"), then loses its files, then its row. What a
crash can still leave behind (files whose commit never happened, temporary files of a write cut
short, a delete cut short) and deletes whose files could not be removed (a read-only photos
folder) are finished by run_retention.

A deleted photo's download links stay behind as revoked tombstones (photo_id NULL), and expired
links are kept for a grace period, so a visitor's old QR code is answered with why it no longer
works; run_retention forgets both once the grace period after their expiry has passed.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.images import prepare_photo_files, upright_size
from db.models import ArtworkRow, AuditRow, CaptureJobRow, DownloadLinkRow, KioskRow, PhotoRow, PhotoStatus
from db.store import PhotoStore, derived_key
from kiosk.errors import ArtworkInUseError, ArtworkNotFoundError, InvalidEditError, KioskExistsError, KioskNotFoundError
from pipeline.types import ArtworkSpec, Framing, NormBox, ReferenceMode

log = logging.getLogger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]

# secrets.token_urlsafe(24): 192 random bits as exactly 32 URL-safe base64 characters.
TOKEN_BYTES = 24
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{32}")

# Files older than this that no row refers to are debris of a save that never committed, and
# temporary files older than this are debris of a write cut short; a save takes milliseconds, so
# retention never takes the files of a save in progress.
ORPHAN_GRACE = timedelta(hours=1)

RETENTION_ACTOR = "retention"


@dataclass(frozen=True)
class PhotoInfo:
    id: str
    kiosk_id: str | None
    artwork_id: str
    created_at: datetime
    framing: Framing
    people: int
    variant: dict[str, Any] | None
    scores: dict[str, Any] | None
    score: float | None
    timings: dict[str, Any]
    result_key: str
    thumbnail_key: str
    raw_key: str | None
    status: PhotoStatus
    size_bytes: int
    # (width, height) of the visitor's photo as it arrived, upright; None where it was not recorded.
    capture_size: tuple[int, int] | None

    @property
    def file_keys(self) -> list[str]:
        return [key for key in (self.result_key, self.thumbnail_key, self.raw_key) if key is not None]

    @classmethod
    def from_row(cls, row: PhotoRow) -> PhotoInfo:
        return cls(
            id=row.id,
            kiosk_id=row.kiosk_id,
            artwork_id=row.artwork_id,
            created_at=row.created_at,
            framing=Framing(row.framing),
            people=row.people,
            variant=row.variant,
            scores=row.scores,
            score=row.score,
            timings=row.timings,
            result_key=row.result_key,
            thumbnail_key=row.thumbnail_key,
            raw_key=row.raw_key,
            status=PhotoStatus(row.status),
            size_bytes=row.size_bytes,
            capture_size=(
                (row.capture_width, row.capture_height)
                if row.capture_width is not None and row.capture_height is not None
                else None
            ),
        )


@dataclass(frozen=True)
class LinkInfo:
    id: int
    photo_id: str | None  # None once the photo was deleted
    expires_at: datetime
    revoked: bool
    download_count: int
    created_at: datetime
    language: str | None = None  # the booth's language, for the phone page; None: the phone's own

    @classmethod
    def from_row(cls, row: DownloadLinkRow) -> LinkInfo:
        return cls(
            id=row.id,
            photo_id=row.photo_id,
            expires_at=row.expires_at,
            revoked=row.revoked,
            download_count=row.download_count,
            created_at=row.created_at,
            language=row.language,
        )


@dataclass(frozen=True)
class SavedPhoto:
    photo: PhotoInfo
    link: LinkInfo
    # The download token in plain text: this is the only place it ever exists; only its hash is stored.
    # None when the caller brought the hash (a queued capture: the node that queued it holds the token).
    token: str | None


class DeleteResult(str, enum.Enum):
    DELETED = "deleted"
    GONE = "gone"  # no such photo, or another delete got there first
    # Hidden from everyone at once, but its files (or its row) could not be removed now, e.g. the
    # photos folder is read-only: the next run_retention finishes the delete.
    PENDING = "pending"


class LinkState(str, enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DELETED = "deleted"  # the photo was deleted (by the visitor, staff or retention)
    UNKNOWN = "unknown"  # malformed, tampered, never issued, or long forgotten


@dataclass(frozen=True)
class RetentionReport:
    photos_deleted: int  # past the retention period, plus deletes a crash had cut short
    links_deleted: int  # expired longer than the grace period, tombstones of deleted photos included
    orphaned_files_deleted: int  # temporary files of writes cut short included
    photos_failed: int  # files that could not be deleted; hidden meanwhile, retried on the next run


@dataclass(frozen=True)
class ArtworkRecord:
    spec: ArtworkSpec
    image_key: str
    enabled: bool
    available: bool
    sort_order: int
    created_at: datetime
    updated_at: datetime
    # The look it offers and the painted look's strength; None: the service's setting (kiosk/looks.py).
    look: str | None = None
    stylize_strength: float | None = None

    @classmethod
    def from_row(cls, row: ArtworkRow) -> ArtworkRecord:
        region = row.reference_region
        return cls(
            spec=ArtworkSpec(
                id=row.id,
                title=row.title,
                artist=row.artist,
                year=row.year,
                boxes={Framing(name): NormBox.from_list(box) for name, box in row.boxes.items()},
                reference_region=NormBox.from_list(region) if region is not None else None,
                reference_mode=ReferenceMode(row.reference_mode),
                demo=row.demo,
            ),
            image_key=row.image_key,
            enabled=row.enabled,
            available=row.available,
            sort_order=row.sort_order,
            created_at=row.created_at,
            updated_at=row.updated_at,
            look=row.look,
            stylize_strength=row.stylize_strength,
        )


@dataclass(frozen=True)
class LinkLookup:
    state: LinkState
    link: LinkInfo | None  # None only for UNKNOWN
    photo: PhotoInfo | None  # set only for VALID
    artwork: ArtworkRecord | None  # the photo's artwork (for its credit), set only for VALID


@dataclass(frozen=True)
class ArtworkSyncReport:
    added: int
    updated: int
    made_unavailable: int


# A kiosk's id: it appears in the booth's address (/kiosk/{id}).
KIOSK_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
# The artwork columns staff may change (update_artwork); the image only by replacing it.
ARTWORK_EDITABLE = frozenset(
    {"title", "artist", "year", "boxes", "reference_region", "reference_mode", "enabled", "sort_order"}
    | {"look", "stylize_strength"}
)


@dataclass(frozen=True)
class KioskRecord:
    id: str
    name: str
    location: str
    # The artworks staff chose for this kiosk; empty: it offers every enabled artwork.
    artwork_ids: tuple[str, ...]
    last_seen: datetime | None
    # When its screen was paired (db/booths.py); None while it is not.
    paired_at: datetime | None = None

    @classmethod
    def from_row(cls, row: KioskRow) -> KioskRecord:
        return cls(
            id=row.id,
            name=row.name,
            location=row.location,
            artwork_ids=tuple((row.settings or {}).get("artworks", ())),
            last_seen=row.last_seen,
            paired_at=row.paired_at if row.credential_hash is not None else None,
        )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


async def save_composition(
    session_factory: SessionFactory,
    store: PhotoStore,
    *,
    result_jpeg: bytes,
    raw_photo: bytes | None,
    keep_raw: bool,
    artwork_id: str,
    kiosk_id: str | None,
    report: Mapping[str, Any],
    link_ttl: timedelta,
    now: datetime,
    max_pixels: int,
    language: str | None = None,
    photo_id: str | None = None,
    token_hash: str | None = None,
) -> SavedPhoto:
    """Store a composition (metadata stripped, with a thumbnail, and the visitor's photo when
    ``keep_raw``) and a download link to it, whose page opens in ``language`` (the booth's) when
    given; ``report`` is ComposeResult.report().

    A queued capture (kiosk/capture_queue.py) names its ``photo_id``: its files then go under keys
    derived from it, so a job run twice writes the same files, and the link's ``token_hash`` comes
    from the node that queued it (the only holder of the token); SavedPhoto.token is then None."""
    _require_aware(now)
    if link_ttl <= timedelta(0):
        raise ValueError(f"link_ttl must be positive, not {link_ttl}")
    # Everything that can refuse the input does so before any file is written.
    framing = Framing(report["framing"])
    people = int(report["people"])
    files = await asyncio.to_thread(
        prepare_photo_files, result_jpeg, raw_photo if keep_raw else None, max_pixels=max_pixels
    )
    # What the camera delivered (kept or not), e.g. whether the booth got the camera's full-size still.
    capture_size = await asyncio.to_thread(upright_size, raw_photo, max_pixels=max_pixels) if raw_photo else None
    contents = [files.result, files.thumbnail] + ([files.raw] if files.raw is not None else [])
    if photo_id is None:
        photo_id = uuid.uuid4().hex
        keys = await _put_files(store, contents)
    else:
        keys = await _put_derived_files(store, photo_id, contents)
    token = None
    if token_hash is None:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        token_hash = hash_token(token)
    try:
        result_key, thumbnail_key, *raw_key = keys
        photo = PhotoRow(
            id=photo_id,
            kiosk_id=kiosk_id,
            artwork_id=artwork_id,
            created_at=now,
            framing=framing.value,
            people=people,
            variant=report.get("variant"),
            scores=report.get("scores"),
            score=report.get("score"),
            timings=dict(report.get("timings_ms") or {}),
            result_key=result_key,
            thumbnail_key=thumbnail_key,
            raw_key=raw_key[0] if raw_key else None,
            status=PhotoStatus.READY.value,
            size_bytes=sum(len(data) for data in contents),
            capture_width=capture_size[0] if capture_size else None,
            capture_height=capture_size[1] if capture_size else None,
        )
        link = _new_link_row(photo_id, token_hash, expires_at=now + link_ttl, now=now, language=language)
        async with session_factory() as session:
            session.add(photo)
            await session.flush()  # the link's foreign key needs the photo inserted first
            session.add(link)
            await session.commit()
    except BaseException:
        await _discard_files_unless_committed(session_factory, store, photo_id, keys)
        raise
    return SavedPhoto(photo=PhotoInfo.from_row(photo), link=LinkInfo.from_row(link), token=token)


async def _put_files(store: PhotoStore, contents: Sequence[bytes]) -> list[str]:
    keys: list[str] = []
    try:
        for data in contents:
            keys.append(await store.put(data))
    except BaseException:
        await _delete_files(store, keys)
        raise
    return keys


# The roles of a photo's files, in save_composition's order: their derived keys' names.
_FILE_ROLES = ("result", "thumbnail", "raw")


async def _put_derived_files(store: PhotoStore, photo_id: str, contents: Sequence[bytes]) -> list[str]:
    keys = [derived_key(photo_id, role) for role in _FILE_ROLES[: len(contents)]]
    try:
        for key, data in zip(keys, contents):
            await store.put_at(key, data)
    except BaseException:
        await _delete_files(store, keys)
        raise
    return keys


async def _discard_files_unless_committed(
    session_factory: SessionFactory, store: PhotoStore, photo_id: str, keys: list[str]
) -> None:
    # A commit can fail after the server committed (the connection dropped on the way back);
    # deleting the files then would leave a row without files. Ask before deleting.
    try:
        async with session_factory() as session:
            committed = await session.get(PhotoRow, photo_id) is not None
    except Exception:
        log.warning("cannot tell whether photo %s was saved; the retention sweep will decide on its files", photo_id)
        return
    if not committed:
        await _delete_files(store, keys)


async def _delete_files(store: PhotoStore, keys: Iterable[str]) -> None:
    """Best effort, for cleaning up after another error: a failure here must not hide that one."""
    for key in keys:
        try:
            await store.delete(key)
        except Exception:
            log.exception("could not delete stored file %s; the retention sweep will retry", key)


async def look_up_link(session_factory: SessionFactory, token: str, *, now: datetime) -> LinkLookup:
    """What a download token leads to at ``now``: the photo and its artwork when the link is VALID,
    otherwise why not. When several reasons apply, DELETED wins over REVOKED over EXPIRED."""
    _require_aware(now)
    unknown = LinkLookup(state=LinkState.UNKNOWN, link=None, photo=None, artwork=None)
    # Anything that token_urlsafe(24) cannot produce is refused before it reaches the database.
    if not isinstance(token, str) or not _TOKEN_PATTERN.fullmatch(token):
        return unknown
    query = (
        select(DownloadLinkRow, PhotoRow, ArtworkRow)
        .outerjoin(PhotoRow, PhotoRow.id == DownloadLinkRow.photo_id)
        .outerjoin(ArtworkRow, ArtworkRow.id == PhotoRow.artwork_id)
        .where(DownloadLinkRow.token_hash == hash_token(token))
    )
    async with session_factory() as session:
        found = (await session.execute(query)).one_or_none()
    if found is None:
        return unknown
    link_row, photo_row, artwork_row = found
    link = LinkInfo.from_row(link_row)
    # A photo in "deleting" has begun to lose its files; to the visitor it is already gone.
    if photo_row is None or photo_row.status == PhotoStatus.DELETING.value:
        return LinkLookup(state=LinkState.DELETED, link=link, photo=None, artwork=None)
    if link.revoked:
        return LinkLookup(state=LinkState.REVOKED, link=link, photo=None, artwork=None)
    if link.expires_at <= now:
        return LinkLookup(state=LinkState.EXPIRED, link=link, photo=None, artwork=None)
    return LinkLookup(
        state=LinkState.VALID,
        link=link,
        photo=PhotoInfo.from_row(photo_row),
        artwork=ArtworkRecord.from_row(artwork_row),
    )


async def get_photo(session_factory: SessionFactory, photo_id: str) -> PhotoInfo | None:
    """The photo, or None when there is none or it is being deleted."""
    query = select(PhotoRow).where(PhotoRow.id == photo_id, PhotoRow.status == PhotoStatus.READY.value)
    async with session_factory() as session:
        row = await session.scalar(query)
    return PhotoInfo.from_row(row) if row is not None else None


async def list_photos(
    session_factory: SessionFactory,
    *,
    kiosk_id: str | None = None,
    artwork_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[PhotoInfo], int]:
    """Photos (not those being deleted), newest first: the page of ``limit`` from ``offset``, and how
    many match in all. Filters: taken at the kiosk, of the artwork, at or after ``since``, before ``until``."""
    if limit < 1 or offset < 0:
        raise ValueError(f"limit must be at least 1 and offset at least 0, not {limit} and {offset}")
    conditions = [PhotoRow.status == PhotoStatus.READY.value]
    if kiosk_id is not None:
        conditions.append(PhotoRow.kiosk_id == kiosk_id)
    if artwork_id is not None:
        conditions.append(PhotoRow.artwork_id == artwork_id)
    if since is not None:
        _require_aware(since)
        conditions.append(PhotoRow.created_at >= since)
    if until is not None:
        _require_aware(until)
        conditions.append(PhotoRow.created_at < until)
    page = select(PhotoRow).where(*conditions).order_by(PhotoRow.created_at.desc(), PhotoRow.id).limit(limit).offset(offset)
    async with session_factory() as session:
        total = await session.scalar(select(func.count()).select_from(PhotoRow).where(*conditions))
        rows = (await session.scalars(page)).all()
    return [PhotoInfo.from_row(row) for row in rows], total


async def replace_result(
    session_factory: SessionFactory,
    store: PhotoStore,
    photo_id: str,
    *,
    result_jpeg: bytes,
    report: Mapping[str, Any],
    actor: str,
    now: datetime,
    max_pixels: int,
) -> PhotoInfo | None:
    """Give a photo a new result (staff re-ran it with other harmonization): its links, kiosk,
    artwork, time and raw photo stay, so the visitor's QR code now downloads the new picture.
    The new files are written, then the row points at them, then the old files are deleted.
    None, and nothing changed, when the photo is gone or being deleted."""
    _require_aware(now)
    framing = Framing(report["framing"])
    people = int(report["people"])
    files = await asyncio.to_thread(prepare_photo_files, result_jpeg, None, max_pixels=max_pixels)
    async with session_factory() as session:
        row = await session.scalar(select(PhotoRow).where(PhotoRow.id == photo_id, PhotoRow.status == PhotoStatus.READY.value))
    if row is None:
        return None
    old_keys = [row.result_key, row.thumbnail_key]
    raw_size = len(await store.get(row.raw_key)) if row.raw_key is not None else 0
    keys = await _put_files(store, [files.result, files.thumbnail])
    replace = (
        update(PhotoRow)
        # Not if a delete claimed it, or another re-run replaced the result, since it was read.
        .where(PhotoRow.id == photo_id, PhotoRow.status == PhotoStatus.READY.value, PhotoRow.result_key == row.result_key)
        .values(
            result_key=keys[0],
            thumbnail_key=keys[1],
            framing=framing.value,
            people=people,
            variant=report.get("variant"),
            scores=report.get("scores"),
            score=report.get("score"),
            timings=dict(report.get("timings_ms") or {}),
            size_bytes=len(files.result) + len(files.thumbnail) + raw_size,
        )
    )
    try:
        async with session_factory() as session, session.begin():
            replaced = await _update_count(session, replace) == 1
            if replaced:
                variant = report.get("variant") or {}
                detail = {"variant": variant.get("name"), "targets": variant.get("targets"), "score": report.get("score")}
                _audit(session, at=now, actor=actor, action="photo.reharmonize", subject=photo_id, detail=detail)
    except BaseException:
        await _discard_replacement_unless_committed(session_factory, store, photo_id, keys)
        raise
    await _delete_files(store, old_keys if replaced else keys)
    return await get_photo(session_factory, photo_id) if replaced else None


async def _discard_replacement_unless_committed(
    session_factory: SessionFactory, store: PhotoStore, photo_id: str, keys: list[str]
) -> None:
    # As _discard_files_unless_committed: a commit that failed on the way back may have happened.
    try:
        async with session_factory() as session:
            committed = await session.scalar(select(PhotoRow.result_key).where(PhotoRow.id == photo_id)) == keys[0]
    except Exception:
        log.warning("cannot tell whether photo %s got its new result; the retention sweep will decide on its files", photo_id)
        return
    if not committed:
        await _delete_files(store, keys)


async def record_downloads(session_factory: SessionFactory, counts: Mapping[int, int]) -> None:
    """Add ``counts[link_id]`` downloads to each link; links deleted meanwhile are skipped."""
    if not counts:
        return
    async with session_factory() as session, session.begin():
        for link_id, count in sorted(counts.items()):  # one lock order for every writer
            # Incremented in SQL, so counts from several processes all add up.
            await session.execute(
                update(DownloadLinkRow)
                .where(DownloadLinkRow.id == link_id)
                .values(download_count=DownloadLinkRow.download_count + count)
                .execution_options(synchronize_session=False)
            )


def _new_link_row(photo_id: str, token_hash: str, *, expires_at: datetime, now: datetime, language: str | None) -> DownloadLinkRow:
    return DownloadLinkRow(
        photo_id=photo_id,
        token_hash=token_hash,
        expires_at=expires_at,
        revoked=False,
        download_count=0,
        created_at=now,
        language=language,
    )


async def create_link(
    session_factory: SessionFactory, photo_id: str, *, link_ttl: timedelta, actor: str, now: datetime, language: str | None = None
) -> tuple[LinkInfo, str] | None:
    """A new download link to a stored photo (staff show a photo's QR code again: only the hash of
    a token is kept, so an earlier link cannot be shown twice), audited; (link, token), or None when
    the photo does not exist (any more)."""
    _require_aware(now)
    if link_ttl <= timedelta(0):
        raise ValueError(f"link_ttl must be positive, not {link_ttl}")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    async with session_factory() as session, session.begin():
        photo = await session.scalar(select(PhotoRow).where(PhotoRow.id == photo_id, PhotoRow.status == PhotoStatus.READY.value))
        if photo is None:
            return None
        link = _new_link_row(photo_id, hash_token(token), expires_at=now + link_ttl, now=now, language=language)
        session.add(link)
        await session.flush()  # the link's id, for the audit entry
        _audit(session, at=now, actor=actor, action="link.create", subject=photo_id, detail={"link": link.id})
    return LinkInfo.from_row(link), token


async def revoke_link(session_factory: SessionFactory, link_id: int, *, actor: str, now: datetime) -> bool:
    """Refuse the link from now on; False when it does not exist or was already revoked."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        revoked = await _update_count(
            session,
            update(DownloadLinkRow)
            .where(DownloadLinkRow.id == link_id, DownloadLinkRow.revoked.is_(False))
            .values(revoked=True),
        )
        if revoked:
            _audit(session, at=now, actor=actor, action="link.revoke", subject=str(link_id))
    return revoked == 1


async def delete_photo(
    session_factory: SessionFactory, store: PhotoStore, photo_id: str, *, actor: str, now: datetime
) -> DeleteResult:
    """Delete a photo and its files; its links stay as revoked tombstones. Of simultaneous deletes
    of one photo exactly one gets DELETED (or PENDING); the others, like deletes of unknown photos,
    get GONE. PENDING: the photo is hidden, but its files could not be removed now; the next
    run_retention removes them and the row."""
    _require_aware(now)
    async with session_factory() as session, session.begin():
        claimed = await _claim_for_deletion(session, photo_id)
        if claimed:
            _audit(session, at=now, actor=actor, action="photo.delete", subject=photo_id)
    if not claimed:
        return DeleteResult.GONE
    try:
        await _finish_deletion(session_factory, store, photo_id)
    except Exception as exc:
        log.warning("photo %s is hidden but could not be deleted now (%s); retention will finish it", photo_id, exc)
        return DeleteResult.PENDING
    return DeleteResult.DELETED


async def _claim_for_deletion(session: AsyncSession, photo_id: str) -> bool:
    """Hide the photo from every lookup, and make this caller the one that deletes it."""
    # The status flip is the lock: the database lets exactly one UPDATE see "ready".
    claim = (
        update(PhotoRow)
        .where(PhotoRow.id == photo_id, PhotoRow.status == PhotoStatus.READY.value)
        .values(status=PhotoStatus.DELETING.value)
    )
    return await _update_count(session, claim) == 1


async def _finish_deletion(session_factory: SessionFactory, store: PhotoStore, photo_id: str) -> bool:
    """Delete the files, then the row; True when this call deleted the row. Its links lose their
    photo (ON DELETE SET NULL) and are revoked, together with the row's delete.

    A failing file delete raises and leaves the row hidden in "deleting", for retention to retry.
    """
    async with session_factory() as session:
        row = await session.get(PhotoRow, photo_id)
        if row is None:
            return False
        keys = PhotoInfo.from_row(row).file_keys
    for key in keys:
        await store.delete(key)
    async with session_factory() as session, session.begin():
        # Revoked as well as orphaned: whatever reads the link row alone refuses it too.
        await _update_count(
            session, update(DownloadLinkRow).where(DownloadLinkRow.photo_id == photo_id).values(revoked=True)
        )
        return await _update_count(session, delete(PhotoRow).where(PhotoRow.id == photo_id)) == 1


async def run_retention(
    session_factory: SessionFactory,
    store: PhotoStore,
    *,
    now: datetime,
    photo_days: int | None,
    link_grace: timedelta,
    orphan_grace: timedelta = ORPHAN_GRACE,
) -> RetentionReport:
    """Delete photos older than ``photo_days`` days (None: keep them) with their files, leaving
    their links as tombstones; links (tombstones too) that expired ``link_grace`` or longer ago;
    and stored files that no row refers to, and temporary files of unfinished writes, older than
    ``orphan_grace``."""
    _require_aware(now)
    if photo_days is not None and photo_days < 1:
        raise ValueError(f"photo_days must be at least 1 (or None to keep photos), not {photo_days}")
    if link_grace < timedelta(0):
        raise ValueError(f"link_grace must not be negative, not {link_grace}")
    if photo_days is not None:
        cutoff = now - timedelta(days=photo_days)
        async with session_factory() as session, session.begin():
            await _update_count(
                session,
                update(PhotoRow)
                .where(PhotoRow.created_at < cutoff, PhotoRow.status == PhotoStatus.READY.value)
                .values(status=PhotoStatus.DELETING.value),
            )
    # The photos just claimed, and deletes cut short earlier by a crash or a storage error.
    # One photo whose files cannot be deleted must not keep the others (or the links) alive.
    photos_deleted = photos_failed = 0
    async with session_factory() as session:
        deleting = list(await session.scalars(select(PhotoRow.id).where(PhotoRow.status == PhotoStatus.DELETING.value)))
    for photo_id in deleting:
        try:
            photos_deleted += await _finish_deletion(session_factory, store, photo_id)
        except Exception:
            log.exception("retention could not delete photo %s; it stays hidden and is retried next time", photo_id)
            photos_failed += 1

    # Within the grace period a visitor's link is answered "expired" or "deleted", not "not found".
    forgotten = delete(DownloadLinkRow).where(DownloadLinkRow.expires_at <= now - link_grace)
    async with session_factory() as session, session.begin():
        links_deleted = await _update_count(session, forgotten)

    orphans_deleted = await _delete_orphaned_files(session_factory, store, now - orphan_grace)
    orphans_deleted += await store.delete_unfinished_writes(now - orphan_grace)

    report = RetentionReport(
        photos_deleted=photos_deleted,
        links_deleted=links_deleted,
        orphaned_files_deleted=orphans_deleted,
        photos_failed=photos_failed,
    )
    async with session_factory() as session, session.begin():
        _audit(session, at=now, actor=RETENTION_ACTOR, action="retention", subject="", detail=asdict(report))
    log.info(
        "retention (photos kept %s, links kept %s past expiry): deleted %d photos, %d links, "
        "%d orphaned files; %d photos failed",
        f"{photo_days} days" if photo_days is not None else "forever",
        link_grace,
        photos_deleted,
        links_deleted,
        orphans_deleted,
        photos_failed,
    )
    return report


async def _delete_orphaned_files(session_factory: SessionFactory, store: PhotoStore, cutoff: datetime) -> int:
    # Listed before the references are read: a file whose row commits in between is then seen as referenced.
    candidates = await store.keys_older_than(cutoff)
    if not candidates:
        return 0
    async with session_factory() as session:
        photo_keys = await session.execute(select(PhotoRow.result_key, PhotoRow.thumbnail_key, PhotoRow.raw_key))
        referenced = {key for keys in photo_keys for key in keys if key is not None}
        referenced |= set(await session.scalars(select(ArtworkRow.image_key)))
        # A queued composition's still, and a finished one's picture its node has not read yet.
        job_keys = await session.execute(select(CaptureJobRow.still_key, CaptureJobRow.result_key))
        referenced |= {key for keys in job_keys for key in keys if key is not None}
    deleted = 0
    for key in candidates:
        if key not in referenced:
            try:
                deleted += await store.delete(key)
            except Exception as exc:  # a read-only folder, say: the others and the next run still try
                log.warning("retention could not delete the orphaned file %s (%s); retrying next time", key, exc)
    return deleted


async def sync_artworks(
    session_factory: SessionFactory,
    specs: Sequence[ArtworkSpec],
    image_keys: Mapping[str, str],
    *,
    now: datetime,
    imported: Callable[[str], bool] = lambda image_key: True,
) -> ArtworkSyncReport:
    """Make the artworks table match the artworks found at start (folder and demos).

    New artworks are added enabled, after the existing ones in ``specs`` order. Known ones get
    their metadata, boxes and ``image_keys[id]`` updated; staff's ``enabled`` and ``sort_order``
    are kept. Artworks no longer found are marked unavailable rather than deleted, since photos
    refer to them; they become available again when they come back.

    Only rows whose image key ``imported`` accepts (the library's keys) are the sync's. The others
    are staff's: artworks uploaded in the dashboard, and folder or demo artworks staff have edited
    there (the first edit moves the image into the photo store, see kiosk.catalogue). Sync never
    changes or retires them, so a staff edit survives every restart; a folder file with the id
    of such an artwork is ignored, with a warning.
    """
    _require_aware(now)
    ids = [spec.id for spec in specs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate artwork ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    missing = [i for i in ids if i not in image_keys]
    if missing:
        raise ValueError(f"no image key for artworks: {', '.join(missing)}")
    try:
        return await _sync_artworks_once(session_factory, specs, image_keys, now, imported)
    except IntegrityError:
        # Another process (a second kiosk on the same PostgreSQL) added one of them meanwhile;
        # a second pass finds its rows and updates them instead.
        return await _sync_artworks_once(session_factory, specs, image_keys, now, imported)


async def _sync_artworks_once(
    session_factory: SessionFactory,
    specs: Sequence[ArtworkSpec],
    image_keys: Mapping[str, str],
    now: datetime,
    imported: Callable[[str], bool],
) -> ArtworkSyncReport:
    added = updated = made_unavailable = 0
    async with session_factory() as session, session.begin():
        every_row = (await session.scalars(select(ArtworkRow))).all()
        next_order = max((row.sort_order for row in every_row), default=-1) + 1
        staff_ids = {row.id for row in every_row if not imported(row.image_key)}
        rows = {row.id: row for row in every_row if row.id not in staff_ids}
        for spec in specs:
            if spec.id in staff_ids:
                log.info(
                    "artwork %r: %s is not imported over the artwork of that id staff uploaded or edited in the "
                    "dashboard (rename the file to offer both)",
                    spec.id,
                    image_keys[spec.id],
                )
                continue
            values = _artwork_values(spec, image_keys[spec.id])
            row = rows.get(spec.id)
            if row is None:
                row = ArtworkRow(id=spec.id, **values, enabled=True, sort_order=next_order)
                row.created_at = row.updated_at = now
                session.add(row)
                next_order += 1
                added += 1
                continue
            changes = {name: value for name, value in values.items() if getattr(row, name) != value}
            if changes:
                for name, value in changes.items():
                    setattr(row, name, value)
                row.updated_at = now
                updated += 1
        present = {spec.id for spec in specs}
        for row in rows.values():
            if row.id not in present and row.available:
                row.available = False
                row.updated_at = now
                made_unavailable += 1
    return ArtworkSyncReport(added=added, updated=updated, made_unavailable=made_unavailable)


def _artwork_values(spec: ArtworkSpec, image_key: str) -> dict[str, Any]:
    return {
        "title": spec.title,
        "artist": spec.artist,
        "year": spec.year,
        "image_key": image_key,
        "boxes": {framing.value: box.to_list() for framing, box in spec.boxes.items()},
        "reference_region": spec.reference_region.to_list() if spec.reference_region else None,
        "reference_mode": spec.reference_mode.value,
        "demo": spec.demo,
        "available": True,
    }


async def list_artworks(session_factory: SessionFactory, *, include_hidden: bool = False) -> list[ArtworkRecord]:
    """Artworks in staff's order; only the enabled and available ones unless ``include_hidden``."""
    query = select(ArtworkRow).order_by(ArtworkRow.sort_order, ArtworkRow.id)
    if not include_hidden:
        query = query.where(ArtworkRow.enabled.is_(True), ArtworkRow.available.is_(True))
    async with session_factory() as session:
        return [ArtworkRecord.from_row(row) for row in (await session.scalars(query)).all()]


async def get_artwork(session_factory: SessionFactory, artwork_id: str) -> ArtworkRecord | None:
    """The artwork, hidden or not (photos keep referring to retired ones); None when unknown."""
    async with session_factory() as session:
        row = await session.get(ArtworkRow, artwork_id)
    return ArtworkRecord.from_row(row) if row is not None else None


async def add_artwork(
    session_factory: SessionFactory,
    store: PhotoStore,
    *,
    image_jpeg: bytes,
    slug: str,
    title: str,
    artist: str,
    year: str,
    boxes: Mapping[str, list[float]],
    actor: str,
    now: datetime,
) -> ArtworkRecord:
    """Store an uploaded artwork's image and add the artwork, enabled, after the others, under the
    id ``slug`` or, when that is taken, ``slug-2``, ``slug-3``... The image is written before the
    row is committed and deleted again when the commit fails."""
    _require_aware(now)

    async def insert(key: str) -> ArtworkRecord:
        async with session_factory() as session, session.begin():
            # Slugs are lowercase letters, digits and dashes: nothing LIKE would read as a wildcard.
            taken = set(await session.scalars(select(ArtworkRow.id).where(ArtworkRow.id.like(f"{slug}%"))))
            artwork_id = next(c for c in (slug, *(f"{slug}-{n}" for n in range(2, len(taken) + 3))) if c not in taken)
            last = await session.scalar(select(func.max(ArtworkRow.sort_order)))
            row = ArtworkRow(
                id=artwork_id,
                title=title,
                artist=artist,
                year=year,
                image_key=key,
                boxes=dict(boxes),
                reference_region=None,
                reference_mode=ReferenceMode.ARTWORK.value,
                enabled=True,
                available=True,
                sort_order=last + 1 if last is not None else 0,
                demo=False,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            _audit(session, at=now, actor=actor, action="artwork.create", subject=artwork_id, detail={"title": title})
        return ArtworkRecord.from_row(row)

    key = await store.put(image_jpeg, suffix=".jpg")
    try:
        try:
            return await insert(key)
        except IntegrityError:
            # Another upload took the same id between our look and our insert; the next free one.
            return await insert(key)
    except BaseException:
        await _discard_image_unless_committed(session_factory, store, key)
        raise


async def _discard_image_unless_committed(session_factory: SessionFactory, store: PhotoStore, key: str) -> None:
    # As for photos: a commit that failed on the way back may have happened; ask before deleting.
    try:
        async with session_factory() as session:
            committed = await session.scalar(select(ArtworkRow.id).where(ArtworkRow.image_key == key)) is not None
    except Exception:
        log.warning("cannot tell whether artwork image %s was saved; the retention sweep will decide", key)
        return
    if not committed:
        await _delete_files(store, [key])


async def update_artwork(
    session_factory: SessionFactory,
    store: PhotoStore,
    artwork_id: str,
    values: Mapping[str, Any],
    *,
    image_jpeg: bytes | None = None,
    actor: str,
    now: datetime,
) -> ArtworkRecord:
    """Set the artwork's columns in ``values`` (ARTWORK_EDITABLE, as the row stores them) and, with
    ``image_jpeg``, store that as its image (how a folder or demo artwork becomes staff's, see
    sync_artworks). The audit entry holds what changed; nothing changed, nothing is written."""
    _require_aware(now)
    unknown = sorted(set(values) - ARTWORK_EDITABLE)
    if unknown:
        raise ValueError(f"not editable artwork columns: {', '.join(unknown)}")
    key = await store.put(image_jpeg, suffix=".jpg") if image_jpeg is not None else None
    try:
        async with session_factory() as session, session.begin():
            row = await session.get(ArtworkRow, artwork_id, with_for_update=True)
            if row is None:
                raise ArtworkNotFoundError(f"no artwork {artwork_id!r}")
            changed = {name: value for name, value in values.items() if getattr(row, name) != value}
            if key is not None:
                changed["image_key"] = key
            if changed:
                for name, value in changed.items():
                    setattr(row, name, value)
                row.updated_at = now
                _audit(session, at=now, actor=actor, action="artwork.update", subject=artwork_id, detail=changed)
    except BaseException:
        if key is not None:
            await _discard_image_unless_committed(session_factory, store, key)
        raise
    return ArtworkRecord.from_row(row)


async def delete_artwork(
    session_factory: SessionFactory, store: PhotoStore, artwork_id: str, *, actor: str, now: datetime
) -> None:
    """Delete an artwork whose image is in ``store`` (uploaded or edited in the dashboard): its row,
    then its image. ArtworkInUseError while photos refer to it: those keep its credit."""
    _require_aware(now)
    in_use = ArtworkInUseError(
        f"artwork {artwork_id!r} cannot be deleted: photos were made with it and keep its credit. "
        "Disable it instead; kiosks and the gallery then no longer offer it."
    )
    try:
        async with session_factory() as session, session.begin():
            row = await session.get(ArtworkRow, artwork_id, with_for_update=True)
            if row is None:
                raise ArtworkNotFoundError(f"no artwork {artwork_id!r}")
            if await session.scalar(select(PhotoRow.id).where(PhotoRow.artwork_id == artwork_id).limit(1)):
                raise in_use
            key = row.image_key
            await session.delete(row)
            detail = {"title": row.title}
            _audit(session, at=now, actor=actor, action="artwork.delete", subject=artwork_id, detail=detail)
    except IntegrityError:
        raise in_use from None  # a photo was made with it meanwhile (the foreign key restricts)
    await _delete_files(store, [key])


async def reorder_artworks(session_factory: SessionFactory, ids: Sequence[str], *, actor: str, now: datetime) -> None:
    """Put the artworks ``ids`` first, in that order; the others follow in their present order."""
    _require_aware(now)
    twice = sorted({i for i in ids if list(ids).count(i) > 1})
    if twice:
        raise InvalidEditError(f"the new order names {', '.join(twice)} more than once")
    async with session_factory() as session, session.begin():
        in_order = await session.scalars(select(ArtworkRow).order_by(ArtworkRow.sort_order, ArtworkRow.id))
        rows = {row.id: row for row in in_order}
        unknown = [i for i in ids if i not in rows]
        if unknown:
            raise ArtworkNotFoundError(f"no artwork {', '.join(map(repr, unknown))}")
        order = [*ids, *(i for i in rows if i not in set(ids))]
        for position, artwork_id in enumerate(order):
            rows[artwork_id].sort_order = position
        _audit(session, at=now, actor=actor, action="artwork.reorder", subject="", detail={"order": order})


async def list_kiosks(session_factory: SessionFactory) -> list[KioskRecord]:
    async with session_factory() as session:
        rows = await session.scalars(select(KioskRow).order_by(KioskRow.name, KioskRow.id))
        return [KioskRecord.from_row(row) for row in rows]


async def get_kiosk(session_factory: SessionFactory, kiosk_id: str) -> KioskRecord | None:
    async with session_factory() as session:
        row = await session.get(KioskRow, kiosk_id)
    return KioskRecord.from_row(row) if row is not None else None


async def register_kiosk(
    session_factory: SessionFactory, kiosk_id: str, *, name: str, location: str, actor: str, now: datetime
) -> KioskRecord:
    """Add a kiosk; only staff do (its booth's screen is then paired, see db/booths.py)."""
    _require_aware(now)
    if not isinstance(kiosk_id, str) or not KIOSK_ID.fullmatch(kiosk_id):
        raise InvalidEditError(f"a kiosk id is 1-64 lowercase letters, digits and dashes, not {kiosk_id!r}")
    row = KioskRow(
        id=kiosk_id,
        name=_kiosk_text(name, "name", 200) or kiosk_id,
        location=_kiosk_text(location, "location", 300),
        settings={},
        last_seen=None,
    )
    exists = KioskExistsError(f"a kiosk {kiosk_id!r} is registered already; edit it instead")
    try:
        async with session_factory() as session, session.begin():
            if await session.get(KioskRow, kiosk_id) is not None:
                raise exists
            session.add(row)
            _audit(session, at=now, actor=actor, action="kiosk.register", subject=kiosk_id, detail={"name": row.name})
    except IntegrityError:
        raise exists from None
    return KioskRecord.from_row(row)


async def update_kiosk(
    session_factory: SessionFactory,
    kiosk_id: str,
    *,
    name: str | None = None,
    location: str | None = None,
    artwork_ids: Sequence[str] | None = None,
    actor: str,
    now: datetime,
) -> KioskRecord:
    """Change what is given: the name, the location, the artworks the kiosk offers (empty: all)."""
    _require_aware(now)
    changed: dict[str, Any] = {}
    if name is not None:
        changed["name"] = _kiosk_text(name, "name", 200)
        if not changed["name"]:
            raise InvalidEditError("give the kiosk a name, e.g. where it stands")
    if location is not None:
        changed["location"] = _kiosk_text(location, "location", 300)
    async with session_factory() as session, session.begin():
        row = await session.get(KioskRow, kiosk_id, with_for_update=True)
        if row is None:
            raise KioskNotFoundError(f"no kiosk {kiosk_id!r}; register it first")
        if artwork_ids is not None:
            chosen = list(dict.fromkeys(artwork_ids))
            known = set(await session.scalars(select(ArtworkRow.id).where(ArtworkRow.id.in_(chosen))))
            unknown = [i for i in chosen if i not in known]
            if unknown:
                raise InvalidEditError(f"no artwork {', '.join(map(repr, unknown))}; choose among the listed ones")
            if chosen != list((row.settings or {}).get("artworks", [])):
                changed["artworks"] = chosen
        for column in ("name", "location"):
            if column in changed and changed[column] == getattr(row, column):
                del changed[column]
        if changed:
            if "name" in changed:
                row.name = changed["name"]
            if "location" in changed:
                row.location = changed["location"]
            if "artworks" in changed:
                # A new dict: SQLAlchemy notices a replaced JSON value, not one changed in place.
                row.settings = {**(row.settings or {}), "artworks": changed["artworks"]}
            _audit(session, at=now, actor=actor, action="kiosk.update", subject=kiosk_id, detail=changed)
    return KioskRecord.from_row(row)


def _kiosk_text(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidEditError(f"the kiosk's {field} must be text")
    text = " ".join(value.split())
    if len(text) > limit or not text.isprintable():
        raise InvalidEditError(f"the kiosk's {field} must be at most {limit} printable characters")
    return text


def _audit(
    session: AsyncSession, *, at: datetime, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None
) -> None:
    session.add(AuditRow(at=at, actor=actor, action=action, subject=subject, detail=detail or {}))


async def _update_count(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return result.rowcount  # type: ignore[attr-defined]


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware time, e.g. datetime.now(timezone.utc)")

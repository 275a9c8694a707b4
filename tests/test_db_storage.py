"""Photos, download links, retention and artworks against real databases.

Every test runs on a SQLite file in tmp_path, and again on PostgreSQL when
ARTBOOTH_TEST_POSTGRES_URL names a server (each test then gets a fresh database there,
so the role needs CREATEDB).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, DateTime, bindparam, func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import (
    DatabaseUnavailableError,
    check_database,
    create_engine,
    create_session_factory,
    database_url,
)
from db.migrate import alembic_config, upgrade
from db.models import AuditRow, Base, DownloadLinkRow, PhotoRow, PhotoStatus
from db.service import (
    DeleteResult,
    LinkLookup,
    LinkState,
    SavedPhoto,
    delete_photo,
    get_artwork,
    get_photo,
    hash_token,
    list_artworks,
    look_up_link,
    record_downloads,
    register_kiosk,
    revoke_link,
    run_retention,
    save_composition,
    sync_artworks,
)
from db.store import LocalPhotoStore
from imagefiles import encoded
from kiosk.demo_gallery import DEMO_ARTWORKS
from kiosk.errors import ArtBoothError
from kiosk.settings import SettingsError
from pipeline.types import ArtworkSpec, Framing, NormBox
from test_db_images import assert_metadata_free, phone_jpeg

MAX_PIXELS = 40_000_000
LINK_TTL = timedelta(days=7)
LINK_GRACE = timedelta(days=3)
ARTWORK = DEMO_ARTWORKS[0].spec
REPORT = {
    "artwork": ARTWORK.id,
    "people": 2,
    "framing": "half-body",
    "faces": [{"box": [1.0, 2.0, 30.0, 40.0], "p": 0.99}, {"box": [50.0, 2.0, 80.0, 40.0], "p": 0.98}],
    "timings_ms": {"decode": 3.2, "matting": 120.5},
    "variant": {"name": "balanced", "texture": {"grain": 0.2}},
    "scores": {"balanced": 0.81, "faithful": 0.77},
    "score": 0.81,
}


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    store: LocalPhotoStore

    def store_files(self) -> list[Path]:
        return [p for p in self.store.root.rglob("*") if p.is_file()] if self.store.root.exists() else []

    async def count(self, model: type[Base]) -> int:
        async with self.sessions() as session:
            return await session.scalar(select(func.count()).select_from(model))


@pytest.fixture
async def db(empty_database_url, tmp_path) -> AsyncIterator[Database]:
    await upgrade(empty_database_url)
    engine = create_engine(empty_database_url)
    sessions = create_session_factory(engine)
    specs = [demo.spec for demo in DEMO_ARTWORKS]
    await sync_artworks(sessions, specs, {spec.id: f"demo:{spec.id}" for spec in specs}, now=datetime.now(timezone.utc))
    try:
        yield Database(empty_database_url, engine, sessions, LocalPhotoStore(tmp_path / "photos"))
    finally:
        await engine.dispose()


def composition_jpeg() -> bytes:
    return encoded(np.full((120, 160, 3), (200, 120, 40), np.uint8), "JPEG", quality=90)


async def save(
    db: Database,
    *,
    now: datetime | None = None,
    link_ttl: timedelta = LINK_TTL,
    raw: bytes | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    store: LocalPhotoStore | None = None,
    artwork_id: str = ARTWORK.id,
    kiosk_id: str | None = None,
) -> SavedPhoto:
    return await save_composition(
        sessions or db.sessions,
        store or db.store,
        result_jpeg=composition_jpeg(),
        raw_photo=raw,
        keep_raw=raw is not None,
        artwork_id=artwork_id,
        kiosk_id=kiosk_id,
        report=REPORT,
        link_ttl=link_ttl,
        now=now or datetime.now(timezone.utc),
        max_pixels=MAX_PIXELS,
    )


# --- migrations ---------------------------------------------------------------------------


async def test_migrations_apply_on_an_empty_database_and_match_the_models(empty_database_url):
    await upgrade(empty_database_url)
    await upgrade(empty_database_url)  # a second run finds nothing to do
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            drift = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert tables == {
        "alembic_version", "artworks", "kiosks", "photos", "download_links",
        "staff_users", "staff_sessions", "login_attempts", "audit_log", "api_tokens", "service_settings", "kiosk_presence",
            "capture_jobs", "museum_logo",
    }
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert drift == []


def upgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


# Rows as the initial schema stored them, written without today's models.
INITIAL_SCHEMA_ROWS = [
    text(
        "INSERT INTO artworks (id, title, artist, year, image_key, boxes, reference_region, reference_mode,"
        " enabled, available, sort_order, demo, created_at, updated_at)"
        " VALUES (:artwork_id, 'Water Lilies', 'Claude Monet', '1906', 'file:water-lilies.jpg', :boxes, NULL,"
        " 'artwork', true, true, 0, false, :created_at, :created_at)"
    ).bindparams(bindparam("created_at", type_=DateTime(timezone=True))),
    text(
        "INSERT INTO photos (id, kiosk_id, artwork_id, created_at, framing, people, variant, scores, score,"
        " timings, result_key, thumbnail_key, raw_key, status, size_bytes)"
        " VALUES (:photo_id, NULL, :artwork_id, :created_at, 'half-body', 1, NULL, NULL, NULL,"
        " '{}', :result_key, :thumbnail_key, NULL, 'ready', 1234)"
    ).bindparams(bindparam("created_at", type_=DateTime(timezone=True))),
    text(
        "INSERT INTO download_links (id, photo_id, token_hash, expires_at, revoked, download_count, created_at)"
        " VALUES (7, :photo_id, :token_hash, :expires_at, false, 5, :created_at)"
    ).bindparams(
        bindparam("created_at", type_=DateTime(timezone=True)), bindparam("expires_at", type_=DateTime(timezone=True))
    ),
]


async def test_upgrading_a_database_with_links_keeps_them_and_lets_them_outlive_their_photo(
    empty_database_url, tmp_path
):
    store = LocalPhotoStore(tmp_path / "photos")
    result_key, thumbnail_key = [await store.put(composition_jpeg()) for _ in range(2)]
    token = secrets.token_urlsafe(24)
    created_at = datetime.now(timezone.utc).replace(microsecond=0)
    values = {
        "artwork_id": "water-lilies",
        "boxes": json.dumps({framing.value: [0.3, 0.3, 0.7, 1.0] for framing in Framing}),
        "photo_id": uuid.uuid4().hex,
        "result_key": result_key,
        "thumbnail_key": thumbnail_key,
        "token_hash": hash_token(token),
        "created_at": created_at,
        "expires_at": created_at + LINK_TTL,
    }
    engine = create_engine(empty_database_url)
    try:
        await check_database(engine)  # makes the SQLite file's folder
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to, ScriptDirectory.from_config(alembic_config()).get_base())
            for statement in INITIAL_SCHEMA_ROWS:
                await connection.execute(statement, values)
    finally:
        await engine.dispose()

    await upgrade(empty_database_url)

    engine = create_engine(empty_database_url)
    sessions = create_session_factory(engine)
    try:
        async with engine.connect() as connection:
            columns, foreign_keys, drift = await connection.run_sync(
                lambda sync: (
                    {column["name"]: column for column in inspect(sync).get_columns("download_links")},
                    inspect(sync).get_foreign_keys("download_links"),
                    compare_metadata(MigrationContext.configure(sync), Base.metadata),
                )
            )
        assert columns["photo_id"]["nullable"] is True
        assert [(fk["constrained_columns"], fk["options"].get("ondelete")) for fk in foreign_keys] == [
            (["photo_id"], "SET NULL")
        ]
        assert drift == []

        now = created_at + timedelta(hours=1)
        kept = await look_up_link(sessions, token, now=now)
        assert kept.state is LinkState.VALID
        assert (kept.link.id, kept.link.photo_id, kept.link.download_count) == (7, values["photo_id"], 5)
        assert (kept.link.created_at, kept.link.expires_at) == (created_at, created_at + LINK_TTL)
        assert (kept.photo.result_key, kept.photo.created_at) == (result_key, created_at)
        assert kept.artwork.spec.artist == "Claude Monet"

        deleted = await delete_photo(sessions, store, values["photo_id"], actor="staff:ana", now=now)
        assert deleted is DeleteResult.DELETED
        tombstone = await look_up_link(sessions, token, now=now)
        assert tombstone.state is LinkState.DELETED
        assert (tombstone.link.id, tombstone.link.photo_id, tombstone.link.revoked) == (7, None, True)
        assert not await store.exists(result_key) and not await store.exists(thumbnail_key)
    finally:
        await engine.dispose()


# --- saving and downloading ---------------------------------------------------------------


async def test_save_then_look_up_link_then_count_downloads(db):
    now = datetime.now(timezone.utc)
    saved = await save(db, now=now)

    assert len(saved.token) == 32 and saved.photo.id != saved.token
    assert saved.photo.framing is Framing.HALF_BODY and saved.photo.people == 2
    assert saved.photo.score == 0.81 and saved.photo.scores == REPORT["scores"]
    assert saved.photo.variant == REPORT["variant"] and saved.photo.timings == REPORT["timings_ms"]
    assert saved.photo.raw_key is None and saved.photo.status is PhotoStatus.READY
    assert len(db.store_files()) == 2
    assert saved.photo.size_bytes == sum(p.stat().st_size for p in db.store_files())
    assert saved.link.expires_at == now + LINK_TTL

    found = await look_up_link(db.sessions, saved.token, now=now + timedelta(hours=1))
    assert found.state is LinkState.VALID
    photo, link = found.photo, found.link
    assert photo == saved.photo and link == saved.link and link.photo_id == photo.id
    assert found.artwork is not None and found.artwork.spec == ARTWORK
    assert photo.created_at == now and photo.created_at.tzinfo is not None
    assert await db.store.get(photo.result_key) and await db.store.get(photo.thumbnail_key)

    await record_downloads(db.sessions, {link.id: 1})
    await record_downloads(db.sessions, {link.id: 2, link.id + 1000: 1})  # an unknown link is skipped
    assert (await look_up_link(db.sessions, saved.token, now=now)).link.download_count == 3


async def test_only_the_token_hash_is_stored(db):
    saved = await save(db)
    async with db.sessions() as session:
        stored = (await session.scalars(select(DownloadLinkRow))).one()
    assert stored.token_hash != saved.token and len(stored.token_hash) == 64 and saved.token not in stored.token_hash


async def test_raw_photo_is_kept_only_when_asked_and_without_metadata(db):
    kept = await save(db, raw=phone_jpeg())
    assert kept.photo.raw_key is not None
    assert_metadata_free(await db.store.get(kept.photo.raw_key))
    assert_metadata_free(await db.store.get(kept.photo.result_key))

    dropped = await save_composition(
        db.sessions, db.store, result_jpeg=composition_jpeg(), raw_photo=phone_jpeg(), keep_raw=False,
        artwork_id=ARTWORK.id, kiosk_id=None, report=REPORT, link_ttl=LINK_TTL,
        now=datetime.now(timezone.utc), max_pixels=MAX_PIXELS,
    )
    assert dropped.photo.raw_key is None


async def test_a_photo_can_name_its_registered_kiosk(db):
    now = datetime.now(timezone.utc)
    await register_kiosk(db.sessions, "hall-2", name="Hall 2 booth", location="Hall 2", actor="test", now=now)
    saved = await save(db, kiosk_id="hall-2")
    assert saved.photo.kiosk_id == "hall-2"


def refused(state: LinkState, saved: SavedPhoto) -> LinkLookup:
    """What a refused link's lookup must look like: the link, and nothing of the photo."""
    return LinkLookup(state=state, link=saved.link, photo=None, artwork=None)


async def test_a_link_expires_at_its_expiry_time(db):
    now = datetime.now(timezone.utc)
    saved = await save(db, now=now)
    just_before = await look_up_link(db.sessions, saved.token, now=now + LINK_TTL - timedelta(seconds=1))
    assert just_before.state is LinkState.VALID
    assert await look_up_link(db.sessions, saved.token, now=now + LINK_TTL) == refused(LinkState.EXPIRED, saved)
    later = await look_up_link(db.sessions, saved.token, now=now + LINK_TTL + timedelta(days=1))
    assert later == refused(LinkState.EXPIRED, saved)


async def test_a_revoked_link_is_refused_as_revoked_also_after_it_expires(db):
    now = datetime.now(timezone.utc)
    saved = await save(db, now=now)
    other = await save(db, now=now)

    assert await revoke_link(db.sessions, saved.link.id, actor="staff:ana", now=now) is True
    revoked_link = dataclasses.replace(saved.link, revoked=True)
    for when in (now, now + LINK_TTL + timedelta(days=1)):
        found = await look_up_link(db.sessions, saved.token, now=when)
        assert found == LinkLookup(state=LinkState.REVOKED, link=revoked_link, photo=None, artwork=None)
    assert (await look_up_link(db.sessions, other.token, now=now)).state is LinkState.VALID
    assert await get_photo(db.sessions, saved.photo.id) == saved.photo  # revoking a link keeps the photo

    assert await revoke_link(db.sessions, saved.link.id, actor="staff:ana", now=now) is False
    async with db.sessions() as session:
        audit = (await session.scalars(select(AuditRow))).all()
    assert [(a.actor, a.action, a.subject) for a in audit] == [("staff:ana", "link.revoke", str(saved.link.id))]


async def test_tampered_truncated_overlong_and_foreign_tokens_are_unknown(db):
    saved = await save(db)
    token = saved.token
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    candidates = [
        flipped,
        token[:-1],
        token[:16],
        token + "A",
        token * 100,
        "A" * 10_000,
        "",
        token[:-1] + "=",
        token[:-1] + "é",
        "é" * 32,
        token[:-1] + "\x00",
        token[:-1] + "\n",
        token[:-1] + "٣",  # a digit to Unicode, not to token_urlsafe
        "' OR 1=1 --" + token[11:],
        "A" * 32,  # well-formed, just never issued
        None,
        token.encode(),
        42,
    ]
    now = datetime.now(timezone.utc)
    unknown = LinkLookup(state=LinkState.UNKNOWN, link=None, photo=None, artwork=None)
    for candidate in candidates:
        assert await look_up_link(db.sessions, candidate, now=now) == unknown, repr(candidate)  # type: ignore[arg-type]
    assert (await look_up_link(db.sessions, token, now=now)).state is LinkState.VALID


async def test_malformed_tokens_never_reach_the_database():
    # Nothing listens on port 1: any query would fail with the connection refused.
    engine = create_engine(database_url(Path("."), "postgresql://artbooth:secret@127.0.0.1:1/artbooth"))
    sessions = create_session_factory(engine)
    now = datetime.now(timezone.utc)
    try:
        for malformed in ("", "A" * 31, "A" * 10_000, "A" * 31 + "é", None):
            found = await look_up_link(sessions, malformed, now=now)  # type: ignore[arg-type]
            assert found.state is LinkState.UNKNOWN
        with pytest.raises(OSError):
            await look_up_link(sessions, "A" * 32, now=now)
    finally:
        await engine.dispose()


async def test_photos_and_artworks_are_found_by_id(db):
    saved = await save(db)
    assert await get_photo(db.sessions, saved.photo.id) == saved.photo
    assert await get_photo(db.sessions, "0" * 32) is None

    # Hidden by staff, or gone from the folder: photos of it still need its credit.
    async with db.sessions() as session, session.begin():
        await session.execute(
            text("UPDATE artworks SET enabled = false, available = false WHERE id = :id"), {"id": ARTWORK.id}
        )
    hidden = await get_artwork(db.sessions, ARTWORK.id)
    assert hidden is not None and hidden.spec == ARTWORK and not hidden.enabled and not hidden.available
    assert await get_artwork(db.sessions, "no-such-artwork") is None


# --- crash safety -------------------------------------------------------------------------


class FailingStore(LocalPhotoStore):
    """Fails the nth put, after the earlier ones were written for real."""

    def __init__(self, root: Path, fail_on_put: int) -> None:
        super().__init__(root)
        self.puts = 0
        self.fail_on_put = fail_on_put

    async def put(self, data: bytes, *, suffix: str = ".jpg") -> str:
        self.puts += 1
        if self.puts == self.fail_on_put:
            raise OSError(28, "No space left on device")
        return await super().put(data, suffix=suffix)


class FailingCommitSession(AsyncSession):
    async def commit(self) -> None:
        raise ConnectionError("connection to the database lost before COMMIT")


class LostCommitReplySession(AsyncSession):
    """The server committed, but the reply never arrived."""

    async def commit(self) -> None:
        await super().commit()
        raise ConnectionError("connection to the database lost after COMMIT")


async def test_a_failing_file_write_commits_nothing_and_leaves_no_files(db):
    store = FailingStore(db.store.root, fail_on_put=2)
    with pytest.raises(OSError, match="No space left"):
        await save(db, store=store, raw=composition_jpeg())
    assert store.puts == 2
    assert db.store_files() == []
    assert await db.count(PhotoRow) == 0 and await db.count(DownloadLinkRow) == 0


async def test_a_failing_commit_leaves_no_rows_and_no_files(db):
    failing = async_sessionmaker(db.engine, class_=FailingCommitSession, expire_on_commit=False)
    with pytest.raises(ConnectionError):
        await save(db, sessions=failing, raw=composition_jpeg())
    assert db.store_files() == []
    assert await db.count(PhotoRow) == 0 and await db.count(DownloadLinkRow) == 0


async def test_a_rejected_insert_leaves_no_files(db):
    with pytest.raises(IntegrityError):
        await save(db, artwork_id="no-such-artwork")
    assert db.store_files() == []
    assert await db.count(PhotoRow) == 0


async def test_a_commit_whose_reply_was_lost_keeps_the_files_of_the_saved_row(db):
    lost_reply = async_sessionmaker(db.engine, class_=LostCommitReplySession, expire_on_commit=False)
    with pytest.raises(ConnectionError):
        await save(db, sessions=lost_reply)
    async with db.sessions() as session:
        photo = (await session.scalars(select(PhotoRow))).one()
    assert sorted(p.name for p in db.store_files()) == sorted([photo.result_key, photo.thumbnail_key])


# --- deleting -----------------------------------------------------------------------------


async def test_deleting_a_photo_deletes_its_files_and_leaves_its_link_as_a_tombstone(db):
    saved = await save(db, raw=composition_jpeg())
    other = await save(db)
    assert len(db.store_files()) == 5
    now = datetime.now(timezone.utc)

    assert await delete_photo(db.sessions, db.store, saved.photo.id, actor="staff:ana", now=now) is DeleteResult.DELETED

    assert sorted(p.name for p in db.store_files()) == sorted(other.photo.file_keys)
    for key in saved.photo.file_keys:
        assert not await db.store.exists(key)
    tombstone = dataclasses.replace(saved.link, photo_id=None, revoked=True)
    found = await look_up_link(db.sessions, saved.token, now=now)
    assert found == LinkLookup(state=LinkState.DELETED, link=tombstone, photo=None, artwork=None)
    assert (await look_up_link(db.sessions, other.token, now=now)).state is LinkState.VALID
    assert await get_photo(db.sessions, saved.photo.id) is None
    assert await db.count(PhotoRow) == 1 and await db.count(DownloadLinkRow) == 2
    assert await delete_photo(db.sessions, db.store, saved.photo.id, actor="staff:ana", now=now) is DeleteResult.GONE
    assert await delete_photo(db.sessions, db.store, "0" * 32, actor="staff:ana", now=now) is DeleteResult.GONE


async def test_two_concurrent_deletes_one_deletes_the_other_finds_it_gone(db):
    saved = await save(db, raw=composition_jpeg())
    now = datetime.now(timezone.utc)
    results = await asyncio.gather(
        delete_photo(db.sessions, db.store, saved.photo.id, actor="staff:ana", now=now),
        delete_photo(db.sessions, db.store, saved.photo.id, actor="staff:ben", now=now),
    )
    assert sorted(results) == [DeleteResult.DELETED, DeleteResult.GONE]
    assert db.store_files() == []
    assert await db.count(PhotoRow) == 0 and await db.count(DownloadLinkRow) == 1
    assert (await look_up_link(db.sessions, saved.token, now=now)).state is LinkState.DELETED
    assert await db.count(AuditRow) == 1


async def test_a_deleted_photo_outranks_a_revoked_and_expired_link(db):
    now = datetime.now(timezone.utc)
    saved = await save(db, now=now)
    assert await revoke_link(db.sessions, saved.link.id, actor="staff:ana", now=now) is True
    assert await delete_photo(db.sessions, db.store, saved.photo.id, actor="visitor", now=now) is DeleteResult.DELETED
    for when in (now, now + LINK_TTL + timedelta(days=1)):
        assert (await look_up_link(db.sessions, saved.token, now=when)).state is LinkState.DELETED


class FailingDeleteStore(LocalPhotoStore):
    async def delete(self, key: str) -> bool:
        raise PermissionError(13, "Permission denied")


async def test_a_delete_cut_short_hides_the_photo_and_retention_finishes_it(db):
    saved = await save(db)
    now = datetime.now(timezone.utc)
    failing = FailingDeleteStore(db.store.root)
    assert await delete_photo(db.sessions, failing, saved.photo.id, actor="staff:ana", now=now) is DeleteResult.PENDING
    # Still in the database, but already gone for the visitor.
    assert await look_up_link(db.sessions, saved.token, now=now) == refused(LinkState.DELETED, saved)
    assert await get_photo(db.sessions, saved.photo.id) is None
    assert await delete_photo(db.sessions, db.store, saved.photo.id, actor="staff:ana", now=now) is DeleteResult.GONE

    report = await run_retention(db.sessions, db.store, now=now, photo_days=30, link_grace=LINK_GRACE)
    assert (report.photos_deleted, report.links_deleted) == (1, 0)
    assert db.store_files() == [] and await db.count(PhotoRow) == 0
    found = await look_up_link(db.sessions, saved.token, now=now)
    assert (found.state, found.link.photo_id, found.link.revoked) == (LinkState.DELETED, None, True)


# --- retention ----------------------------------------------------------------------------


async def test_retention_removes_exactly_what_has_expired(db):
    now = datetime.now(timezone.utc)
    old = await save(db, now=now - timedelta(days=31), raw=composition_jpeg())
    old_with_recently_expired_link = await save(db, now=now - timedelta(days=31), link_ttl=timedelta(days=30))
    borderline = await save(db, now=now - timedelta(days=29, hours=23), link_ttl=timedelta(days=30))
    just_expired_link = await save(db, now=now - timedelta(days=2), link_ttl=timedelta(days=1))
    link_expired_a_grace_ago = await save(db, now=now - LINK_GRACE - timedelta(days=1), link_ttl=timedelta(days=1))
    long_expired_link = await save(db, now=now - timedelta(days=10), link_ttl=timedelta(days=1))
    recent = await save(db, now=now - timedelta(hours=1))

    two_hours_ago = time.time() - 7200
    orphan = await db.store.put(b"left by a save that never committed")
    os.utime(db.store.local_path(orphan), (two_hours_ago, two_hours_ago))
    in_flight = await db.store.put(b"written by a save that is committing right now")

    report = await run_retention(db.sessions, db.store, now=now, photo_days=30, link_grace=LINK_GRACE)

    # Photos: both old ones. Links: the old photo's tombstone and the two expired a grace period ago or longer.
    assert dataclasses.astuple(report) == (2, 3, 1, 0)
    kept_photos = [borderline, just_expired_link, link_expired_a_grace_ago, long_expired_link, recent]
    kept_files = {key for kept in kept_photos for key in kept.photo.file_keys}
    assert {p.name for p in db.store_files()} == kept_files | {in_flight}
    async with db.sessions() as session:
        photo_ids = set((await session.scalars(select(PhotoRow.id))).all())
        link_photo_ids = set((await session.scalars(select(DownloadLinkRow.photo_id))).all())
        audit = (await session.scalars(select(AuditRow))).one()
    assert photo_ids == {kept.photo.id for kept in kept_photos}
    assert link_photo_ids == {None, borderline.photo.id, just_expired_link.photo.id, recent.photo.id}
    assert (audit.action, audit.detail) == (
        "retention", {"photos_deleted": 2, "links_deleted": 3, "orphaned_files_deleted": 1, "photos_failed": 0}
    )
    expected_states = [
        (old, LinkState.UNKNOWN),
        (old_with_recently_expired_link, LinkState.DELETED),
        (borderline, LinkState.VALID),
        (just_expired_link, LinkState.EXPIRED),
        (link_expired_a_grace_ago, LinkState.UNKNOWN),
        (long_expired_link, LinkState.UNKNOWN),
        (recent, LinkState.VALID),
    ]
    states = [(await look_up_link(db.sessions, saved.token, now=now)).state for saved, _ in expected_states]
    assert states == [state for _, state in expected_states]

    again = await run_retention(db.sessions, db.store, now=now, photo_days=30, link_grace=LINK_GRACE)
    assert dataclasses.astuple(again) == (0, 0, 0, 0)


async def test_an_expired_link_is_kept_for_the_grace_period_then_forgotten(db):
    now = datetime.now(timezone.utc)
    saved = await save(db, now=now)

    expired = now + LINK_TTL + timedelta(hours=1)
    report = await run_retention(db.sessions, db.store, now=expired, photo_days=30, link_grace=LINK_GRACE)
    assert report.links_deleted == 0
    assert await look_up_link(db.sessions, saved.token, now=expired) == refused(LinkState.EXPIRED, saved)

    forgotten = now + LINK_TTL + LINK_GRACE
    report = await run_retention(db.sessions, db.store, now=forgotten, photo_days=30, link_grace=LINK_GRACE)
    assert report.links_deleted == 1
    assert (await look_up_link(db.sessions, saved.token, now=forgotten)).state is LinkState.UNKNOWN
    assert await get_photo(db.sessions, saved.photo.id) == saved.photo  # the photo has its own retention


async def test_a_photo_whose_files_cannot_be_deleted_does_not_stop_retention(db):
    now = datetime.now(timezone.utc)
    stuck = await save(db, now=now - timedelta(days=40))
    expired_link = await save(db, now=now - timedelta(days=2), link_ttl=timedelta(days=1))
    long_expired_link = await save(db, now=now - timedelta(days=10), link_ttl=timedelta(days=1))
    failing = FailingDeleteStore(db.store.root)
    report = await run_retention(db.sessions, failing, now=now, photo_days=30, link_grace=LINK_GRACE)
    assert (report.photos_deleted, report.links_deleted, report.photos_failed) == (0, 2, 1)
    assert (await look_up_link(db.sessions, stuck.token, now=now)).state is LinkState.UNKNOWN
    assert (await look_up_link(db.sessions, expired_link.token, now=now)).state is LinkState.EXPIRED
    assert (await look_up_link(db.sessions, long_expired_link.token, now=now)).state is LinkState.UNKNOWN

    report = await run_retention(db.sessions, db.store, now=now, photo_days=30, link_grace=LINK_GRACE)
    assert (report.photos_deleted, report.photos_failed) == (1, 0)
    assert {p.name for p in db.store_files()} == {*expired_link.photo.file_keys, *long_expired_link.photo.file_keys}


async def test_retention_can_keep_photos_forever(db):
    now = datetime.now(timezone.utc)
    ancient = await save(db, now=now - timedelta(days=3000), link_ttl=timedelta(days=1))
    report = await run_retention(db.sessions, db.store, now=now, photo_days=None, link_grace=LINK_GRACE)
    assert dataclasses.astuple(report) == (0, 1, 0, 0)
    assert {p.name for p in db.store_files()} == set(ancient.photo.file_keys)


async def test_retention_refuses_meaningless_periods(db):
    now = datetime.now(timezone.utc)
    with pytest.raises(ValueError, match="photo_days"):
        await run_retention(db.sessions, db.store, now=now, photo_days=0, link_grace=LINK_GRACE)
    with pytest.raises(ValueError, match="link_grace"):
        await run_retention(db.sessions, db.store, now=now, photo_days=30, link_grace=timedelta(seconds=-1))


# --- artworks -----------------------------------------------------------------------------


async def test_artworks_sync_keeps_staff_choices_and_retires_missing_ones(db):
    listed = await list_artworks(db.sessions)
    assert [a.spec for a in listed] == [demo.spec for demo in DEMO_ARTWORKS]
    assert all(a.enabled and a.available and a.spec.demo for a in listed)

    # Staff hide the first demo (a later admin page will do this).
    async with db.sessions() as session, session.begin():
        await session.execute(text("UPDATE artworks SET enabled = false WHERE id = :id"), {"id": ARTWORK.id})

    folder_artwork = ArtworkSpec(
        id="starry-night",
        title="The Starry Night",
        artist="Vincent van Gogh",
        year="1889",
        boxes={framing: NormBox(0.3, 0.3, 0.7, 1.0) for framing in Framing},
        reference_region=NormBox(0.0, 0.0, 1.0, 0.5),
    )
    renamed = dataclasses.replace(DEMO_ARTWORKS[1].spec, title="Renamed")
    specs = [folder_artwork, ARTWORK, renamed]  # the third demo is gone
    keys = {spec.id: f"file:{spec.id}.jpg" for spec in specs}
    now = datetime.now(timezone.utc)
    report = await sync_artworks(db.sessions, specs, keys, now=now)
    assert (report.added, report.updated, report.made_unavailable) == (1, 2, len(DEMO_ARTWORKS) - 2)

    shown = await list_artworks(db.sessions)
    assert [a.spec.id for a in shown] == [renamed.id, folder_artwork.id]
    assert shown[0].spec.title == "Renamed" and shown[1].spec == folder_artwork
    assert shown[1].image_key == "file:starry-night.jpg" and shown[1].updated_at == now
    everything = {a.spec.id: a for a in await list_artworks(db.sessions, include_hidden=True)}
    assert everything[ARTWORK.id].enabled is False and everything[ARTWORK.id].available is True
    assert everything[DEMO_ARTWORKS[2].spec.id].available is False

    # Unchanged input changes nothing; a returning artwork is available again, still in its old place.
    assert (await sync_artworks(db.sessions, specs, keys, now=now)).updated == 0
    returning = specs + [DEMO_ARTWORKS[2].spec]
    report = await sync_artworks(db.sessions, returning, keys | {DEMO_ARTWORKS[2].spec.id: "demo"}, now=now)
    assert (report.added, report.updated) == (0, 1)
    assert [a.spec.id for a in await list_artworks(db.sessions)][:2] == [renamed.id, DEMO_ARTWORKS[2].spec.id]


async def test_artworks_sync_refuses_inconsistent_input(db):
    now = datetime.now(timezone.utc)
    with pytest.raises(ValueError, match="no image key"):
        await sync_artworks(db.sessions, [ARTWORK], {}, now=now)
    with pytest.raises(ValueError, match="duplicate"):
        await sync_artworks(db.sessions, [ARTWORK, ARTWORK], {ARTWORK.id: "k"}, now=now)


# --- connecting ---------------------------------------------------------------------------


def test_database_url_defaults_to_sqlite_in_the_data_dir_and_takes_common_schemes(tmp_path):
    assert database_url(tmp_path, "") == f"sqlite+aiosqlite:///{tmp_path / 'artbooth.db'}"
    assert database_url(tmp_path, "postgres://u:p@db.example/ab") == "postgresql+asyncpg://u:p@db.example/ab"
    assert database_url(tmp_path, "postgresql://u@h:5433/a") == "postgresql+asyncpg://u@h:5433/a"
    assert database_url(tmp_path, "sqlite:////srv/a.db") == "sqlite+aiosqlite:////srv/a.db"
    with pytest.raises(SettingsError, match="mysql"):
        database_url(tmp_path, "mysql://u:secret@h/db")
    with pytest.raises(SettingsError) as excinfo:
        database_url(tmp_path, "not a url :secret")
    assert "secret" not in str(excinfo.value)


async def test_an_unreachable_server_is_a_clear_error_without_the_password():
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    url = database_url(Path("."), "postgresql://artbooth:hunter2@127.0.0.1:1/artbooth")
    with pytest.raises(DatabaseUnavailableError) as excinfo:
        await upgrade(url)
    message = str(excinfo.value)
    assert "127.0.0.1:1" in message and "hunter2" not in message
    assert isinstance(excinfo.value, ArtBoothError)


@pytest.mark.parametrize("blocked", ["database file is a folder", "data folder is a file"])
async def test_an_unopenable_sqlite_file_is_a_clear_error(tmp_path, blocked):
    data_dir = tmp_path / "data"
    if blocked == "database file is a folder":
        (data_dir / "artbooth.db").mkdir(parents=True)
    else:
        data_dir.write_bytes(b"")
    engine = create_engine(database_url(data_dir, ""))
    try:
        with pytest.raises(DatabaseUnavailableError, match="artbooth.db"):
            await check_database(engine)
    finally:
        await engine.dispose()


async def test_sqlite_enforces_foreign_keys_and_uses_write_ahead_logging(tmp_path):
    engine = create_engine(database_url(tmp_path / "data", ""))
    try:
        await check_database(engine)  # also makes the missing data folder
        async with engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
            assert await connection.scalar(text("PRAGMA journal_mode")) == "wal"
    finally:
        await engine.dispose()


async def test_simultaneous_upgrades_of_one_database_both_succeed(empty_database_url):
    # Two kiosks starting together against one server, or the CLI racing the service.
    await asyncio.gather(upgrade(empty_database_url), upgrade(empty_database_url))
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        await engine.dispose()

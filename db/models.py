"""The database schema: artworks, kiosks, photos, download links, staff users and their sessions
and sign-in attempts, audit log.

Every datetime is timezone-aware UTC in Python. SQLite has no time zones, so UTC is stored
there as a naive value and made aware again on the way out; naive values are refused on the
way in, because a local time stored as UTC would silently shift every expiry and retention.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kiosk.settings import ARTWORK_LOOKS
from pipeline.types import Framing, ReferenceMode


def database_now():
    """The database's clock (CURRENT_TIMESTAMP) as a UtcDateTime: the clock every node and worker sharing
    the database agrees on, where theirs may disagree."""
    return func.current_timestamp(type_=UtcDateTime())


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the database stores timezone-aware UTC only")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# JSONB on PostgreSQL (indexable, compact); plain JSON text elsewhere. SQL NULL, not JSON 'null', for None.
JsonDocument = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class PhotoStatus(str, enum.Enum):
    READY = "ready"
    # Hidden from every lookup while its files are removed; retention finishes a delete that crashed midway.
    DELETING = "deleting"


class StaffRole(str, enum.Enum):
    ADMIN = "admin"
    OPERATOR = "operator"


def _one_of(column: str, values: type[enum.Enum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    # Named constraints, so later migrations can alter them by name (SQLite batch mode needs names too).
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JsonDocument}


class ArtworkRow(Base):
    __tablename__ = "artworks"
    __table_args__ = (
        CheckConstraint(_one_of("reference_mode", ReferenceMode), name="reference_mode"),
        CheckConstraint(f"look IS NULL OR look IN ({', '.join(map(repr, ARTWORK_LOOKS))})", name="look"),
        CheckConstraint("stylize_strength IS NULL OR stylize_strength BETWEEN 0 AND 1", name="stylize_strength"),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    artist: Mapped[str] = mapped_column(String(300))
    year: Mapped[str] = mapped_column(String(64))
    # Where the artwork's image lives, in the terms of whoever imported it (see service.sync_artworks).
    image_key: Mapped[str] = mapped_column(String(512))
    # {"close-up": [x0, y0, x1, y1], ...} in normalised artwork coordinates.
    boxes: Mapped[dict[str, Any]]
    reference_region: Mapped[list[float] | None] = mapped_column(JsonDocument)
    reference_mode: Mapped[str] = mapped_column(String(16))
    # Staff's choice; sync never changes it once the row exists.
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Whether the artwork's source (folder file or demo) was present at the last sync.
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer)
    demo: Mapped[bool] = mapped_column(Boolean, default=False)
    # The look it offers (kiosk/looks.py: one of ARTWORK_LOOKS) and the painted look's strength (0..1);
    # NULL: the service's settings (look, stylize_strength). Staff's choice, like enabled: sync never sets it.
    look: Mapped[str | None] = mapped_column(String(16))
    stylize_strength: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class KioskRow(Base):
    __tablename__ = "kiosks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(300), default="")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_seen: Mapped[datetime | None]
    # The SHA-256 of the booth's credential (its browser keeps the credential in a cookie); NULL
    # while the kiosk is not paired or was revoked. A leaked database lets nobody act as a booth.
    credential_hash: Mapped[str | None] = mapped_column(String(64))
    paired_at: Mapped[datetime | None]
    # The SHA-256 of the one-time pairing code staff opened, until it is used or expires.
    pairing_code_hash: Mapped[str | None] = mapped_column(String(64))
    pairing_expires_at: Mapped[datetime | None]


class PhotoRow(Base):
    __tablename__ = "photos"
    __table_args__ = (
        CheckConstraint(_one_of("framing", Framing), name="framing"),
        CheckConstraint(_one_of("status", PhotoStatus), name="status"),
    )

    # uuid4 hex: appears in public URLs, so it must not be guessable or reveal how many photos exist.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kiosk_id: Mapped[str | None] = mapped_column(ForeignKey("kiosks.id", ondelete="SET NULL"), index=True)
    artwork_id: Mapped[str] = mapped_column(ForeignKey("artworks.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    framing: Mapped[str] = mapped_column(String(16))
    people: Mapped[int] = mapped_column(Integer)
    # The harmonization variant, its candidates' scores and the chosen score; absent when harmonization is off.
    variant: Mapped[dict[str, Any] | None]
    scores: Mapped[dict[str, Any] | None]
    score: Mapped[float | None] = mapped_column(Float)
    timings: Mapped[dict[str, Any]]
    result_key: Mapped[str] = mapped_column(String(255))
    thumbnail_key: Mapped[str] = mapped_column(String(255))
    raw_key: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    # All of the photo's stored files together.
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # The visitor's photo as it arrived, upright (the booth's camera still): NULL for photos stored
    # before it was recorded.
    capture_width: Mapped[int | None] = mapped_column(Integer)
    capture_height: Mapped[int | None] = mapped_column(Integer)


class DownloadLinkRow(Base):
    __tablename__ = "download_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # NULL once the photo is deleted: the link stays behind as a tombstone, so a visitor who opens
    # it is told the photo was deleted rather than that the link never existed.
    photo_id: Mapped[str | None] = mapped_column(ForeignKey("photos.id", ondelete="SET NULL"), index=True)
    # Only the token's SHA-256 is kept: a leaked database does not hand out working links.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    download_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    # The language the visitor used at the booth (a catalogue code, "fr", "zh_Hans"): the phone page
    # opens in it. NULL: links made before, or by the public form and the API; the phone's own language.
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)


class StaffUserRow(Base):
    __tablename__ = "staff_users"
    __table_args__ = (CheckConstraint(_one_of("role", StaffRole), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class StaffSessionRow(Base):
    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Only the SHA-256 of the session id in the cookie: a leaked database signs nobody in.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    # The session's CSRF token, which its forms and API calls must send back.
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LoginAttemptRow(Base):
    """Sign-in attempts of the last lockout period, for the lockout; the audit log keeps the history."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_client_ip_at", "client_ip", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    # As typed (normalized), whether or not such a user exists.
    username: Mapped[str] = mapped_column(String(64))
    client_ip: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiTokenRow(Base):
    """A bearer token for the REST API, created by staff in the dashboard."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Only the SHA-256 of the token: a leaked database authenticates nobody.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token's first characters, shown in the dashboard so staff can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    # The scope names the token grants, e.g. ["compositions:write", "photos:read"].
    scopes: Mapped[list[str]] = mapped_column(JsonDocument)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]


class ServiceSettingRow(Base):
    """A setting staff changed in the dashboard; it wins over the settings file and environment."""

    __tablename__ = "service_settings"

    # A field name of kiosk.settings.Settings.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonDocument)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(64))


class KioskPresenceRow(Base):
    """A booth as one serve node last saw it (db/presence.py). Every node reads every row, so each
    shows every booth's status; last_seen is the database's clock, the one all nodes share."""

    __tablename__ = "kiosk_presence"

    kiosk_id: Mapped[str] = mapped_column(ForeignKey("kiosks.id", ondelete="CASCADE"), primary_key=True)
    # The serve node's name (setting node_name; by default its host name and port).
    node: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_seen: Mapped[datetime]
    # What that node knows of the booth: {"camera": one of kiosk.booths.CAMERA_STATES, "connected": bool}.
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CaptureJobRow(Base):
    """A composition queued for `artbooth worker` processes (kiosk/capture_queue.py; PostgreSQL only,
    serve --role web). procrastinate's own tables hold the job's place in the queue, its retries and
    the workers' heartbeats; this row holds what the job is about and how it ended, for the node
    that waits for it, for whichever node a booth asks again, and for the staff's queue page."""

    __tablename__ = "capture_jobs"

    # uuid4 hex, or for a booth's capture the hash of its kiosk and its own capture id: the photo's id
    # too, so a job run twice (its worker died) stores one photo.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # "photo": stored as a visitor's photo; "image": only the picture, for staff (re-runs, try-it).
    kind: Mapped[str] = mapped_column(String(16))
    # Whose job it is (kiosk.capture_queue.PRIORITIES): "booth", "api" or "staff".
    source: Mapped[str] = mapped_column(String(16))
    kiosk_id: Mapped[str | None] = mapped_column(ForeignKey("kiosks.id", ondelete="SET NULL"))
    # The serve node that queued it, and the worker that last ran it.
    node: Mapped[str] = mapped_column(String(200))
    worker: Mapped[str | None] = mapped_column(String(200))
    # "queued" until a worker finishes it: then "done" or "failed" (the photo refused, e.g. no person).
    state: Mapped[str] = mapped_column(String(16), index=True)
    # The camera's photo, written to the photo store before the job was queued.
    still_key: Mapped[str] = mapped_column(String(255))
    # What to compose: artwork id, reference mode, harmonization, the visitor's language.
    request: Mapped[dict[str, Any]]
    photo_id: Mapped[str | None] = mapped_column(String(32))
    # An "image" job's picture, until the node that waits for it has read it.
    result_key: Mapped[str | None] = mapped_column(String(255))
    report: Mapped[dict[str, Any] | None]
    error_code: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(2000))
    # Runs begun: 2 when a worker died in the first and another worker ran it again.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # By the database's clock, the one every node and worker shares.
    queued_at: Mapped[datetime] = mapped_column(index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class MuseumLogoRow(Base):
    """The museum's logo (kiosk/museum.py): one row, in the database every node and worker shares,
    so every photo's credit strip and every page show the same logo whichever process made them."""

    __tablename__ = "museum_logo"

    # Always 1: there is one logo.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # A PNG at most kiosk.museum.LOGO_LONG_SIDE pixels long (a few hundred KB at most).
    png: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime]

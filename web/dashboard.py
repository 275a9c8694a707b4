"""The staff dashboard's Overview, Photos, Settings, Users and Audit-log sections.

Operators see the Overview and Photos (and may delete photos, withdraw links and compose a photo
again); Settings, Users and the audit log are for administrators. Every change is a POST carrying
the session's CSRF token (checked by web.staff.middleware), answered with a redirect to a page
that says what happened.

Composing a photo again needs the visitor's camera photo, which is kept only while the setting
keep_raw_photos is on. The new picture replaces the photo's result (db.service.replace_result):
the visitor's QR code keeps working and now serves the better picture; no second photo appears.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time as day_time, timedelta, timezone

from aiohttp import web

from db import reports, service, staff as staff_db
from db.models import StaffRole
from db.service import DeleteResult, SessionFactory
from db.staff import LastAdminError, UserExistsError
from db.store import StoredFileMissingError
from kiosk.auth import InvalidUsernameError, WeakPasswordError, check_password, check_username
from kiosk.booths import ONLINE_HEARTBEATS
from kiosk.catalogue import look_harmonization
from kiosk.errors import ArtBoothError
from kiosk.looks import Harmonization, LookError
from kiosk.qr import qr_svg
from kiosk.settings import DASHBOARD_FIELDS, Settings, SettingsError
from kiosk.workers import PoolBusyError
from pipeline.types import ReferenceMode
from web import availability
from web import dashboard_pages as pages
from web.dashboard_pages import KioskOnline, PhotoFilters, Problem, Viewer
from web.keys import BOOTHS_KEY, CATALOGUE_KEY, POOL_KEY, STORAGE_KEY
from web.staff import STAFF_AUTH_KEY, require_login, require_role
from web.visitor_text import privacy_notice

log = logging.getLogger(__name__)

PHOTOS_PER_PAGE = 24
AUDIT_PER_PAGE = 50
# The highest ?page= a list answers: far beyond any museum's photos or audit log, and small enough
# that the row offset stays a number every database takes (a 20-digit page was a 500).
MAX_PAGE = 1_000_000
# The days the photo filter takes: every photo's day, with room on both sides; bounded so that the
# day after "To" (where its range ends) always exists (To=9999-12-31 was a 500).
FIRST_FILTER_DAY, LAST_FILTER_DAY = date(2000, 1, 1), date(2999, 12, 31)
# The problems the Overview lists: the newest this many warnings and errors of the service's loggers.
RECENT_PROBLEMS = 50
SERVICE_LOGGERS = ("web", "kiosk", "db", "streaming", "pipeline")


class RecentProblems(logging.Handler):
    """The newest WARNING-and-worse records of the service's loggers, kept in memory for the Overview."""

    def __init__(self, capacity: int = RECENT_PROBLEMS) -> None:
        super().__init__(level=logging.WARNING)
        self._records: collections.deque[Problem] = collections.deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the code that logged it
            message = str(record.msg)
        self._records.append(
            Problem(
                at=datetime.fromtimestamp(record.created, timezone.utc),
                level=record.levelname,
                logger=record.name,
                message=message.splitlines()[0] if message else "",
            )
        )

    def recent(self) -> list[Problem]:
        return list(self._records)


PROBLEMS_KEY = web.AppKey("recent_problems", RecentProblems)


async def recent_problems(app: web.Application):
    """cleanup_ctx: collect warnings and errors while the app runs; the handler goes at shutdown."""
    handler = RecentProblems()
    loggers = [logging.getLogger(name) for name in SERVICE_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    app[PROBLEMS_KEY] = handler
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/staff/", overview_page)
    router.add_get("/staff/photos", photos_page)
    router.add_get("/staff/photos/{photo_id}", photo_page)
    router.add_get("/staff/photos/{photo_id}/thumbnail.jpg", photo_thumbnail)
    router.add_get("/staff/photos/{photo_id}/result.jpg", photo_result)
    router.add_get("/staff/photos/{photo_id}/delete", confirm_delete_page)
    router.add_post("/staff/photos/{photo_id}/delete", delete_photo)
    router.add_post("/staff/photos/{photo_id}/links", new_link)
    router.add_get("/staff/photos/{photo_id}/links/{link_id}/revoke", confirm_revoke_page)
    router.add_post("/staff/photos/{photo_id}/links/{link_id}/revoke", revoke_link)
    router.add_post("/staff/photos/{photo_id}/reharmonize", reharmonize)
    router.add_get("/staff/settings", settings_page)
    router.add_post("/staff/settings", save_settings)
    router.add_post("/staff/settings/reset", reset_setting)
    router.add_get("/staff/users", users_page)
    router.add_post("/staff/users", create_user)
    router.add_post("/staff/users/{username}/role", change_role)
    router.add_post("/staff/users/{username}/disable", disable_user)
    router.add_post("/staff/users/{username}/enable", enable_user)
    router.add_post("/staff/users/{username}/password", reset_password)
    router.add_get("/staff/audit", audit_page)


# --- helpers ----------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _redirect(location: str, notice: str) -> web.Response:
    separator = "&" if "?" in location else "?"
    return web.Response(status=303, headers={"Location": f"{location}{separator}notice={notice}"})


def _notice(request: web.Request) -> str | None:
    return request.query.get("notice")


def _page_number(request: web.Request) -> int:
    """The list page asked for (?page=, 1 when absent); ValueError naming the field when it is not 1..MAX_PAGE."""
    text = request.query.get("page", "1")
    if not re.fullmatch(r"[0-9]{1,7}", text) or not 1 <= int(text) <= MAX_PAGE:
        raise ValueError(f"page must be a whole number from 1 to {MAX_PAGE:,}, not {text!r}")
    return int(text)


def _pages(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


def _safe_back(value: object, default: str) -> str:
    """Where a form returns to: only the photo pages of this site."""
    if isinstance(value, str) and value.startswith("/staff/photos") and "//" not in value and value.isprintable():
        return value
    return default


async def _form(request: web.Request) -> dict[str, str]:
    return {name: value for name, value in (await request.post()).items() if isinstance(value, str)}


# --- Overview ---------------------------------------------------------------------------------------


async def overview_page(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    storage = request.app[STORAGE_KEY]
    booths = request.app[BOOTHS_KEY]
    figures = await reports.overview(storage.sessions, now=_now())
    kiosks = [
        KioskOnline(
            kiosk=kiosk,
            online=booths.online(kiosk.id),
            connected=booths.peers.stats(kiosk.id) is not None,
            camera=booths.live_stats(kiosk.id)["camera"],
        )
        for kiosk in await service.list_kiosks(storage.sessions)
    ]
    return pages.overview(
        request,
        Viewer.of(identity),
        figures,
        kiosks,
        request.app[PROBLEMS_KEY].recent(),
        online_within_s=ONLINE_HEARTBEATS * storage.settings.kiosk_heartbeat_seconds,
    )


# --- Photos -----------------------------------------------------------------------------------------


def _utc_day(text: str, field_name: str) -> date | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or not FIRST_FILTER_DAY <= day <= LAST_FILTER_DAY:
        raise ValueError(
            f"{field_name} must be a date like 2026-11-22, between {FIRST_FILTER_DAY} and {LAST_FILTER_DAY}, not {text!r}"
        )
    return day


async def photos_page(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    storage = request.app[STORAGE_KEY]
    query = request.query
    filters = PhotoFilters(
        kiosk=query.get("kiosk", ""), artwork=query.get("artwork", ""), since=query.get("since", ""), until=query.get("until", "")
    )
    try:
        page = _page_number(request)
        since, until = _utc_day(filters.since, "From"), _utc_day(filters.until, "To")
    except ValueError as exc:
        # Nothing is listed rather than the unfiltered list, which would look filtered.
        error, page, found, total = str(exc), 1, [], 0
    else:
        error = None
        found, total = await service.list_photos(
            storage.sessions,
            kiosk_id=filters.kiosk or None,
            artwork_id=filters.artwork or None,
            since=datetime.combine(since, day_time.min, tzinfo=timezone.utc) if since else None,
            # "To" names the last day shown: photos before the next day's start.
            until=datetime.combine(until + timedelta(days=1), day_time.min, tzinfo=timezone.utc) if until else None,
            limit=PHOTOS_PER_PAGE,
            offset=(page - 1) * PHOTOS_PER_PAGE,
        )
    links = await reports.links_of(storage.sessions, [photo.id for photo in found])
    artworks = {record.spec.id: record for record in await request.app[CATALOGUE_KEY].records(include_hidden=True)}
    return pages.photos(
        request,
        Viewer.of(identity),
        found,
        total,
        links,
        filters=filters,
        kiosks=await service.list_kiosks(storage.sessions),
        artworks=artworks,
        page=page,
        pages=_pages(total, PHOTOS_PER_PAGE),
        now=_now(),
        notice=_notice(request),
        error=error,
    )


async def _photo_or_404(request: web.Request) -> service.PhotoInfo:
    """The photo the URL names (to signed-in staff), or a 404 page to raise."""
    identity = require_login(request)
    photo = await service.get_photo(request.app[STORAGE_KEY].sessions, request.match_info["photo_id"])
    if photo is None:
        raise web.HTTPNotFound(text=pages.photo_not_found(request, Viewer.of(identity)), content_type="text/html")
    return photo


async def _photo_detail(request: web.Request, photo: service.PhotoInfo, *, status: int = 200, error: str | None = None) -> web.Response:
    identity = require_login(request)
    storage = request.app[STORAGE_KEY]
    links = (await reports.links_of(storage.sessions, [photo.id])).get(photo.id, [])
    artwork = await service.get_artwork(storage.sessions, photo.artwork_id)
    return pages.photo_detail(
        request,
        Viewer.of(identity),
        photo,
        links,
        artwork,
        defaults=storage.settings,
        now=_now(),
        status=status,
        notice=_notice(request),
        error=error,
    )


async def photo_page(request: web.Request) -> web.StreamResponse:
    return await _photo_detail(request, await _photo_or_404(request))


async def _photo_file(request: web.Request, key: str) -> web.StreamResponse:
    store = request.app[STORAGE_KEY].store
    path = store.local_path(key)
    if path is not None:
        return web.FileResponse(path, headers={"Content-Type": "image/jpeg"})
    try:
        body = await store.get(key)
    except StoredFileMissingError:  # deleted a moment ago: as FileResponse answers a missing file
        raise web.HTTPNotFound() from None
    return web.Response(body=body, content_type="image/jpeg")


async def photo_thumbnail(request: web.Request) -> web.StreamResponse:
    return await _photo_file(request, (await _photo_or_404(request)).thumbnail_key)


async def photo_result(request: web.Request) -> web.StreamResponse:
    return await _photo_file(request, (await _photo_or_404(request)).result_key)


async def confirm_delete_page(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    photo = await _photo_or_404(request)
    artwork = await service.get_artwork(request.app[STORAGE_KEY].sessions, photo.artwork_id)
    return pages.confirm_delete(request, Viewer.of(identity), photo, artwork)


async def delete_photo(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    storage = request.app[STORAGE_KEY]
    photo_id = request.match_info["photo_id"]
    result = await service.delete_photo(storage.sessions, storage.store, photo_id, actor=identity.username, now=_now())
    if result is DeleteResult.PENDING:  # hidden already; the files go at the next retention run
        return availability.delete_pending_html(request, back="/staff/photos")
    if result is DeleteResult.DELETED:
        log.info("%s deleted photo %s", identity.username, photo_id)
    return _redirect("/staff/photos", "deleted" if result is DeleteResult.DELETED else "gone")


async def new_link(request: web.Request) -> web.StreamResponse:
    """A new download link to the photo, shown with its QR code for the visitor to scan (a missed QR
    code need not be a lost photo); the photo's other links are left as they are. Answered directly,
    not redirected: the link's token must not travel in a URL of ours, and exists only now."""
    identity = require_login(request)
    storage = request.app[STORAGE_KEY]
    photo = await _photo_or_404(request)
    created = await service.create_link(
        storage.sessions,
        photo.id,
        link_ttl=timedelta(hours=storage.settings.download_link_hours),
        actor=identity.username,
        now=_now(),
    )
    if created is None:
        return _redirect("/staff/photos", "gone")
    link, token = created
    url = storage.download_url(token)
    log.info("%s made a new download link %d for photo %s", identity.username, link.id, photo.id)
    qr = (await asyncio.to_thread(qr_svg, url)).decode("utf-8")  # encoding is CPU work: off the event loop
    artwork = await service.get_artwork(storage.sessions, photo.artwork_id)
    return pages.new_link(request, Viewer.of(identity), photo, artwork, link, url=url, qr=qr)


async def _link_of_photo(request: web.Request) -> service.LinkInfo:
    """The download link the URL names, of the photo it names; else a 404 to raise."""
    photo_id = request.match_info["photo_id"]
    try:
        link_id = int(request.match_info["link_id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    links = (await reports.links_of(request.app[STORAGE_KEY].sessions, [photo_id])).get(photo_id, [])
    link = next((link for link in links if link.id == link_id), None)
    if link is None:
        raise web.HTTPNotFound(text="no such link for this photo")
    return link


async def confirm_revoke_page(request: web.Request) -> web.StreamResponse:
    """Withdrawing a link is asked once more: the visitor's QR code stops working for good."""
    identity = require_login(request)
    photo = await _photo_or_404(request)
    link = await _link_of_photo(request)
    back = _safe_back(request.query.get("back"), f"/staff/photos/{photo.id}")
    artwork = await service.get_artwork(request.app[STORAGE_KEY].sessions, photo.artwork_id)
    return pages.confirm_revoke(request, Viewer.of(identity), photo, artwork, link, back=back)


async def revoke_link(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    storage = request.app[STORAGE_KEY]
    photo_id = request.match_info["photo_id"]
    form = await _form(request)
    back = _safe_back(form.get("back"), f"/staff/photos/{photo_id}")
    link_id = (await _link_of_photo(request)).id  # only a link of this photo: the URL names both
    revoked = await service.revoke_link(storage.sessions, link_id, actor=identity.username, now=_now())
    return _redirect(back, "revoked" if revoked else "revoked-already")


def _harmonization_choice(
    form: dict[str, str], photo_artwork: service.ArtworkRecord, settings: Settings
) -> tuple[Harmonization, ReferenceMode | None]:
    """Staff's choice from the re-run form (the reference None: the artwork's own); ValueError or
    LookError with what to fix."""
    enabled = form.get("harmonize", "on") == "on"
    targets = form.get("targets", "")
    try:
        strength = float(form.get("strength", ""))
    except ValueError:
        raise ValueError("the strength must be a number from 0 to 1") from None
    reference = None
    if form.get("reference"):
        try:
            reference = ReferenceMode(form["reference"])
        except ValueError:
            raise ValueError(f"unknown reference region {form['reference']!r}") from None
        if reference is ReferenceMode.REGION and (photo_artwork is None or photo_artwork.spec.reference_region is None):
            raise ValueError("this artwork has no reference region of its own; choose another reference")
    chosen = Harmonization(enabled=enabled, targets=targets, strength=strength)
    # The look: the one chosen, else the artwork's; the painted strength: the one typed, else the artwork's.
    harmonization = look_harmonization(photo_artwork, chosen, settings, chosen=form.get("look") or None)
    if form.get("stylize_strength"):
        try:
            stylize_strength = float(form["stylize_strength"])
        except ValueError:
            raise ValueError("the painted strength must be a number from 0 to 1") from None
        harmonization = dataclasses.replace(harmonization, stylize_strength=stylize_strength)
    return harmonization, reference


async def reharmonize(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    storage = request.app[STORAGE_KEY]
    photo = await _photo_or_404(request)
    if photo.raw_key is None:
        return await _photo_detail(
            request, photo, status=409, error="This photo cannot be composed again: its camera photo was not kept."
        )
    # Photos keep their artwork's row (the database refuses to delete it while they exist).
    record = await service.get_artwork(storage.sessions, photo.artwork_id)
    form = await _form(request)
    try:
        harmonization, reference = _harmonization_choice(form, record, storage.settings)
        harmonization.applied_to(storage.settings)  # checked as the harmonize settings are
    except (ValueError, SettingsError, LookError) as exc:
        return await _photo_detail(request, photo, status=400, error=f"Not composed: {exc}.")
    try:
        source = (await request.app[CATALOGUE_KEY].source_of(record)).matched_against(reference)
        raw = await storage.store.get(photo.raw_key)
        started = time.monotonic()
        outcome = await request.app[POOL_KEY].compose(raw, source, harmonization=harmonization)
    except StoredFileMissingError:
        return await _photo_detail(request, photo, status=409, error="Not composed: the camera photo's file is missing.")
    except PoolBusyError as exc:
        return await _photo_detail(request, photo, status=503, error=f"Not composed: {exc}.")
    except ArtBoothError as exc:
        return await _photo_detail(request, photo, status=409, error=f"Not composed: {exc}.")
    if not outcome.ok:
        return await _photo_detail(request, photo, status=422, error=f"Not composed: {outcome.error}.")
    try:
        replaced = await service.replace_result(
            storage.sessions,
            storage.store,
            photo.id,
            result_jpeg=outcome.encoded,
            report=outcome.report,
            actor=identity.username,
            now=_now(),
            max_pixels=storage.settings.max_image_pixels,
        )
    except OSError as exc:  # nothing was replaced: the photo keeps its result
        log.exception("could not store the new result of photo %s", photo.id)
        return await _photo_detail(request, photo, status=503, error=f"Not stored: {exc.strerror or exc}.")
    if replaced is None:
        return _redirect("/staff/photos", "gone")
    log.info(
        "%s composed photo %s again (%s, %.1f s)", identity.username, photo.id, harmonization, time.monotonic() - started
    )
    return _redirect(f"/staff/photos/{photo.id}", "reharmonized")


# --- Settings (admin) -------------------------------------------------------------------------------


async def _settings_form(request: web.Request, *, status: int = 200, error: str | None = None) -> web.Response:
    identity = require_role(request, StaffRole.ADMIN)
    storage = request.app[STORAGE_KEY]
    generated = privacy_notice(dataclasses.replace(storage.settings, privacy_notice=""))
    return pages.settings_page(
        request,
        Viewer.of(identity),
        storage.settings,
        storage.loaded_settings,
        generated_privacy=generated,
        status=status,
        notice=_notice(request),
        error=error,
    )


async def settings_page(request: web.Request) -> web.StreamResponse:
    return await _settings_form(request)


async def apply_settings(app: web.Application) -> None:
    """Hand the settings now in effect to what keeps its own copy of them: the compose pool's
    harmonization and the live preview's colour correction. Storage (links, retention) and the
    booth's page read storage.settings each time."""
    settings = app[STORAGE_KEY].settings
    app[POOL_KEY].use_harmonization(settings)
    booths = app.get(BOOTHS_KEY)
    if booths is not None:
        # Reads the harmonizer's weights (kilobytes) from the package: off the event loop.
        await asyncio.to_thread(booths.preview_models.use_harmonization, settings)


async def save_settings(request: web.Request) -> web.StreamResponse:
    identity = require_role(request, StaffRole.ADMIN)
    storage = request.app[STORAGE_KEY]
    form = await _form(request)
    current = storage.settings
    changes = {}
    try:
        for name in DASHBOARD_FIELDS:
            if name not in form:
                continue
            value = form[name].strip() if name != "privacy_notice" else form[name].strip().replace("\r\n", "\n")
            # Only what differs from the value in effect becomes a dashboard value; the rest keeps its source.
            if getattr(current.with_overrides({name: value}), name) != getattr(current, name):
                changes[name] = value
        if changes:
            await storage.change_settings(changes, actor=identity.username)
    except SettingsError as exc:
        return await _settings_form(request, status=400, error=f"Nothing was saved: {exc}.")
    if not changes:
        return _redirect("/staff/settings", "unchanged")
    await apply_settings(request.app)
    log.info("%s changed settings: %s", identity.username, ", ".join(sorted(changes)))
    return _redirect("/staff/settings", "saved")


async def reset_setting(request: web.Request) -> web.StreamResponse:
    identity = require_role(request, StaffRole.ADMIN)
    storage = request.app[STORAGE_KEY]
    name = (await _form(request)).get("name", "")
    if name not in DASHBOARD_FIELDS:
        return await _settings_form(request, status=400, error=f"There is no dashboard setting {name!r}.")
    try:
        await storage.change_settings({}, resets=[name], actor=identity.username)
    except SettingsError as exc:  # another stored value no longer fits with the file's
        return await _settings_form(request, status=400, error=f"Not reset: {exc}.")
    await apply_settings(request.app)
    log.info("%s reset setting %s", identity.username, name)
    return _redirect("/staff/settings", "reset")


# --- Users (admin) ----------------------------------------------------------------------------------


async def _users_form(
    request: web.Request, *, status: int = 200, error: str | None = None, typed_username: str = ""
) -> web.Response:
    identity = require_role(request, StaffRole.ADMIN)
    users = await staff_db.list_users(request.app[STORAGE_KEY].sessions)
    return pages.users_page(
        request, Viewer.of(identity), users, status=status, notice=_notice(request), error=error, typed_username=typed_username
    )


async def users_page(request: web.Request) -> web.StreamResponse:
    return await _users_form(request)


def _role(value: str | None) -> StaffRole | None:
    try:
        return StaffRole(value)
    except ValueError:
        return None


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]}."


async def create_user(request: web.Request) -> web.StreamResponse:
    identity = require_role(request, StaffRole.ADMIN)
    form = await _form(request)
    typed = form.get("username", "")
    role = _role(form.get("role"))
    if role is None:
        return await _users_form(request, status=400, error="Choose a role.", typed_username=typed)
    try:
        username = check_username(typed)
        password = form.get("password", "")
        check_password(password, username)
        password_hash = await request.app[STAFF_AUTH_KEY].passwords.hash_async(password)
        await staff_db.create_user(
            request.app[STORAGE_KEY].sessions,
            username=username,
            password_hash=password_hash,
            role=role,
            actor=identity.username,
            now=_now(),
        )
    except (InvalidUsernameError, WeakPasswordError, UserExistsError) as exc:
        return await _users_form(request, status=400, error=_sentence(exc), typed_username=typed)
    log.info("%s created %s %r", identity.username, role.value, username)
    return _redirect("/staff/users", "created")


# A change to one staff user: (sessions, username, acting admin) -> whether the user exists.
UserChange = Callable[[SessionFactory, str, str], Awaitable[bool]]


async def _change_user(request: web.Request, change: UserChange, notice: str) -> web.StreamResponse:
    """Run ``change(sessions, username, actor)`` for the user the URL names, and answer."""
    identity = require_role(request, StaffRole.ADMIN)
    username = request.match_info["username"]
    try:
        found = await change(request.app[STORAGE_KEY].sessions, username, identity.username)
    except (LastAdminError, WeakPasswordError) as exc:
        return await _users_form(request, status=409 if isinstance(exc, LastAdminError) else 400, error=_sentence(exc))
    if not found:
        return await _users_form(request, status=404, error=f"There is no user {username!r}.")
    log.info("%s: %s for %r", identity.username, notice, username)
    return _redirect("/staff/users", notice)


async def change_role(request: web.Request) -> web.StreamResponse:
    role = _role((await _form(request)).get("role"))
    if role is None:
        require_role(request, StaffRole.ADMIN)
        return await _users_form(request, status=400, error="Choose a role.")
    return await _change_user(
        request, lambda sessions, username, actor: staff_db.change_role(sessions, username, role, actor=actor, now=_now()), "role"
    )


async def disable_user(request: web.Request) -> web.StreamResponse:
    return await _change_user(
        request, lambda sessions, username, actor: staff_db.set_disabled(sessions, username, True, actor=actor, now=_now()), "disabled"
    )


async def enable_user(request: web.Request) -> web.StreamResponse:
    return await _change_user(
        request, lambda sessions, username, actor: staff_db.set_disabled(sessions, username, False, actor=actor, now=_now()), "enabled"
    )


async def reset_password(request: web.Request) -> web.StreamResponse:
    require_role(request, StaffRole.ADMIN)
    password = (await _form(request)).get("password", "")
    passwords = request.app[STAFF_AUTH_KEY].passwords

    async def change(sessions: SessionFactory, username: str, actor: str) -> bool:
        check_password(password, username)
        return await staff_db.set_password(sessions, username, await passwords.hash_async(password), actor=actor, now=_now())

    return await _change_user(request, change, "password")


# --- Audit log (admin) ------------------------------------------------------------------------------


async def audit_page(request: web.Request) -> web.StreamResponse:
    identity = require_role(request, StaffRole.ADMIN)
    sessions = request.app[STORAGE_KEY].sessions
    action, actor = request.query.get("action", ""), request.query.get("actor", "").strip()
    try:
        page = _page_number(request)
    except ValueError as exc:
        error, page, entries, total = str(exc), 1, [], 0
    else:
        error = None
        entries, total = await reports.list_audit(
            sessions, action=action or None, actor=actor or None, limit=AUDIT_PER_PAGE, offset=(page - 1) * AUDIT_PER_PAGE
        )
    return pages.audit_page(
        request,
        Viewer.of(identity),
        entries,
        total,
        actions=await reports.audit_actions(sessions),
        action=action,
        actor=actor,
        page=page,
        pages=_pages(total, AUDIT_PER_PAGE),
        status=400 if error else 200,
        error=error,
    )

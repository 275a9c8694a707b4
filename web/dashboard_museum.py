"""The dashboard's Museum page (admin): the museum's name, accent colour, credit strip and logo
(kiosk/museum.py), and the public routes that show them: the logo and the accent's stylesheet.

Name, accent and strip are settings (kiosk.settings.MUSEUM_FIELDS), stored and audited as the
Settings page's are. The logo is an uploaded file, checked as every upload is (size limit, format,
pixel limit from the header, a full decode) before it replaces the stored one; a refused upload
answers 4xx with the reason and leaves the previous logo in place.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from aiohttp import web
from babel.numbers import format_decimal

from db import museum as museum_db
from db.models import StaffRole
from kiosk.museum import LOGO_ROUTE, STYLESHEET_ROUTE, LogoRefusedError, MuseumIdentity, load_identity, prepare_logo
from kiosk.settings import MAX_MUSEUM_NAME_CHARS, MUSEUM_FIELDS, SettingsError
from web import staff_pages
from web.keys import PAGES_KEY, POOL_KEY, STORAGE_KEY
from web.staff import StaffIdentity, require_role
from web.uploads import UploadRefusedError, read_file, read_form

log = logging.getLogger(__name__)

PAGE = "/staff/museum"
LOGO_FIELD = "logo"
# The notices after a redirect, by the query's name (no text from a URL reaches the page).
NOTICES = ("saved", "unchanged", "logo", "logo-removed")
# A versioned URL (?v=) changes with the logo or colour, so a browser may keep what it fetched.
CACHE_FOR_A_DAY = "public, max-age=86400"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PAGE, museum_page)
    router.add_post(PAGE, save_museum)
    router.add_post(f"{PAGE}/logo", upload_logo)
    router.add_post(f"{PAGE}/logo/delete", remove_logo)
    router.add_get(LOGO_ROUTE, logo)
    router.add_get(STYLESHEET_ROUTE, stylesheet)


async def apply_identity(app: web.Application) -> MuseumIdentity:
    """Load the identity the settings in effect and the stored logo describe and hand it to what
    shows it: the compose pool (credit strips) and the pages (``identity``)."""
    identity = await load_identity(app[STORAGE_KEY])
    app[POOL_KEY].use_identity(identity)
    app[PAGES_KEY].use_identity(identity.for_pages())
    return identity


# --- Public ------------------------------------------------------------------------------------------


async def logo(request: web.Request) -> web.StreamResponse:
    png = request.app[POOL_KEY].identity.logo_png
    if png is None:
        raise web.HTTPNotFound(text="This museum has no logo.")
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": CACHE_FOR_A_DAY})


async def stylesheet(request: web.Request) -> web.Response:
    """The accent colour as the pages' CSS variable (a file, since the pages' policy allows no inline style)."""
    accent = request.app[STORAGE_KEY].settings.museum_accent_colour.lower()
    return web.Response(
        text=f":root {{ --accent: {accent}; }}\n", content_type="text/css", headers={"Cache-Control": CACHE_FOR_A_DAY}
    )


# --- The Museum page (admin) ---------------------------------------------------------------------------


def _page(
    request: web.Request,
    identity: StaffIdentity,
    *,
    status: int = 200,
    error: dict[str, object] | None = None,
    typed: dict[str, str] | None = None,
) -> web.Response:
    settings = request.app[STORAGE_KEY].settings
    values = {"museum_name": settings.museum_name, "museum_accent_colour": settings.museum_accent_colour.lower()}
    notice = request.query.get("notice")
    return staff_pages.html(
        request,
        "staff/museum.html",
        viewer=staff_pages.Viewer.of(identity),
        section=PAGE,
        status=status,
        values=values | (typed or {}),
        credit_strip=settings.credit_strip,
        logo_url=request.app[PAGES_KEY].identity["logo_url"],
        notice=notice if notice in NOTICES else None,
        error=error,
        max_name_chars=MAX_MUSEUM_NAME_CHARS,
        logo_max_bytes=format_decimal(settings.museum_logo_max_bytes, locale=staff_pages.language(request)),
    )


async def museum_page(request: web.Request) -> web.StreamResponse:
    return _page(request, require_role(request, StaffRole.ADMIN))


async def save_museum(request: web.Request) -> web.StreamResponse:
    identity = require_role(request, StaffRole.ADMIN)
    storage = request.app[STORAGE_KEY]
    form = await read_form(request)  # read (and checked) by the staff middleware's CSRF check already
    typed = {name: str(form.get(name, "")).strip() for name in ("museum_name", "museum_accent_colour")}
    typed["credit_strip"] = "true" if form.get("credit_strip") == "on" else "false"
    current = storage.settings
    changes = {}
    for name in MUSEUM_FIELDS:
        try:
            # Only what differs from the value in effect becomes a dashboard value; the rest keeps its source.
            if getattr(current.with_overrides({name: typed[name]}), name) != getattr(current, name):
                changes[name] = typed[name]
        except SettingsError:
            return _page(request, identity, status=400, error={"reason": f"bad_{name}"}, typed=typed)
    if not changes:
        raise web.HTTPSeeOther(f"{PAGE}?notice=unchanged")
    await storage.change_settings(changes, actor=identity.username)
    await apply_identity(request.app)
    log.info("%s changed the museum's %s", identity.username, ", ".join(sorted(changes)))
    raise web.HTTPSeeOther(f"{PAGE}?notice=saved")


async def upload_logo(request: web.Request) -> web.StreamResponse:
    identity = require_role(request, StaffRole.ADMIN)
    settings = request.app[STORAGE_KEY].settings
    try:
        form = await read_form(request)
    except UploadRefusedError:  # the staff middleware answers unreadable forms before this runs
        return _page(request, identity, status=400, error={"reason": "damaged"})
    field = form.get(LOGO_FIELD)
    if not isinstance(field, web.FileField):
        return _page(request, identity, status=400, error={"reason": "no_file"})
    data = await read_file(field)
    try:
        png = await asyncio.to_thread(prepare_logo, data, settings)
    except LogoRefusedError as exc:
        log.info("%s's logo upload was refused: %s", identity.username, exc)
        return _page(request, identity, status=exc.status, error=_refusal(request, exc))
    storage = request.app[STORAGE_KEY]
    await museum_db.change_logo(
        storage.sessions,
        png,
        action="museum.logo",
        detail={"file": field.filename or "", "bytes": len(data)},
        actor=identity.username,
        now=datetime.now(timezone.utc),
        notify=storage.settings_channel,
    )
    await apply_identity(request.app)
    log.info("%s uploaded the museum's logo (%d bytes)", identity.username, len(data))
    raise web.HTTPSeeOther(f"{PAGE}?notice=logo")


async def remove_logo(request: web.Request) -> web.StreamResponse:
    identity = require_role(request, StaffRole.ADMIN)
    storage = request.app[STORAGE_KEY]
    if request.app[POOL_KEY].identity.logo_png is not None:
        await museum_db.change_logo(
            storage.sessions,
            None,
            action="museum.logo_removed",
            detail={},
            actor=identity.username,
            now=datetime.now(timezone.utc),
            notify=storage.settings_channel,
        )
        await apply_identity(request.app)
    raise web.HTTPSeeOther(f"{PAGE}?notice=logo-removed")


def _refusal(request: web.Request, refused: LogoRefusedError) -> dict[str, object]:
    """What the page says about a refused logo: its reason and the numbers, in the page's language."""
    language = staff_pages.language(request)
    return {"reason": refused.reason} | {
        name: format_decimal(value, locale=language) if isinstance(value, int | float) else value
        for name, value in refused.values.items()
    }

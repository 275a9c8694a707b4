"""The staff dashboard's Kiosks section: every registered booth with its live status (whether it
checked in with any serve node lately, kiosk/booths.py; its preview connection here) and statistics, a link that opens its page, and forms to register
a kiosk, to change its name, location and the artworks it offers, to pair its screen and to
revoke that pairing. Admins and operators alike. Every change is a POST answered with a redirect
(pairing: with the page that shows the one-time link); a refused one shows the page again with why.

Pairing (web/kiosk.py explains the booth's side): "Pair this booth" makes a one-time code, valid
``kiosk_pairing_minutes``, of which the database keeps only the SHA-256, and shows the link
``/kiosk/{id}/pair?code=...`` with its QR code; confirming it on the booth's screen gives that
screen the booth's credential. Revoking forgets the credential and closes the booth's live preview.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from aiohttp import web
from markupsafe import Markup

from db import booths as booth_access
from db import service
from db.models import StaffRole
from db.service import KioskRecord
from kiosk.auth import new_token, token_digest
from kiosk.errors import ArtBoothError, KioskNotFoundError
from kiosk.qr import qr_svg
from web.keys import BOOTHS_KEY, CATALOGUE_KEY, STORAGE_KEY
from web.staff import StaffIdentity, require_login, requires
from web import staff_pages
from web.staff_pages import Viewer

SECTION = "/staff/kiosks"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(SECTION, kiosks_page)
    router.add_post(SECTION, register)
    router.add_post(SECTION + "/{kiosk_id}", update)
    router.add_post(SECTION + "/{kiosk_id}/pair", start_pairing)
    router.add_post(SECTION + "/{kiosk_id}/revoke", revoke)


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith((".", "!", "?")) else ".")


def _ago(seconds: float) -> tuple[str, int]:
    """How long ago, as (unit, number): "s", "min" or "h"."""
    if seconds < 90:
        return "s", round(seconds)
    if seconds < 90 * 60:
        return "min", round(seconds / 60)
    return "h", round(seconds / 3600)


def _booth(request: web.Request, kiosk: KioskRecord) -> dict[str, object]:
    """What the page shows of one booth: the record, the live figures, how long ago it was seen."""
    stats = request.app[BOOTHS_KEY].live_stats(kiosk.id)
    ago = None
    if kiosk.last_seen is not None:
        ago = _ago(max((datetime.now(timezone.utc) - kiosk.last_seen).total_seconds(), 0.0))
    return {"kiosk": kiosk, "stats": stats, "preview": stats["preview"], "ago": ago}


async def _page(
    request: web.Request,
    identity: StaffIdentity,
    *,
    error: str | None = None,
    error_for: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> web.Response:
    kiosks = await service.list_kiosks(request.app[STORAGE_KEY].sessions)
    records = await request.app[CATALOGUE_KEY].records(include_hidden=True)
    return staff_pages.html(
        request,
        "staff/kiosks.html",
        viewer=Viewer.of(identity),
        section=SECTION,
        status=status,
        booths=[_booth(request, kiosk) for kiosk in kiosks],
        records=records,
        error=error,
        error_for=error_for,
        form=form or {},
    )


async def kiosks_page(request: web.Request) -> web.StreamResponse:
    return await _page(request, require_login(request))


@requires(StaffRole.OPERATOR)
async def register(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    form = await request.post()
    typed = {name: str(form.get(name, "")) for name in ("id", "name", "location")}
    kiosk_id = typed["id"].strip()
    try:
        await service.register_kiosk(
            request.app[STORAGE_KEY].sessions,
            kiosk_id,
            name=typed["name"],
            location=typed["location"],
            actor=identity.username,
            now=datetime.now(timezone.utc),
        )
    except ArtBoothError as exc:
        return await _page(request, identity, error=_sentence(str(exc)), status=400, form=typed)
    return web.Response(status=303, headers={"Location": f"{SECTION}#kiosk-{kiosk_id}"})


@requires(StaffRole.OPERATOR)
async def update(request: web.Request) -> web.StreamResponse:
    identity = require_login(request)
    kiosk_id = request.match_info["kiosk_id"]
    form = await request.post()
    try:
        await service.update_kiosk(
            request.app[STORAGE_KEY].sessions,
            kiosk_id,
            name=str(form.get("name", "")),
            location=str(form.get("location", "")),
            artwork_ids=[str(value) for value in form.getall("artworks", [])],
            actor=identity.username,
            now=datetime.now(timezone.utc),
        )
    except KioskNotFoundError:
        raise web.HTTPNotFound(text="No such kiosk.") from None
    except ArtBoothError as exc:
        return await _page(request, identity, error=_sentence(str(exc)), error_for=kiosk_id, status=400)
    return web.Response(status=303, headers={"Location": f"{SECTION}#kiosk-{kiosk_id}"})


@requires(StaffRole.OPERATOR)
async def start_pairing(request: web.Request) -> web.StreamResponse:
    """A new one-time pairing link for the kiosk, shown once on the page this answers with."""
    identity = require_login(request)
    kiosk_id = request.match_info["kiosk_id"]
    settings = request.app[STORAGE_KEY].settings
    code = new_token()
    now = datetime.now(timezone.utc)
    expires_at = now + timedelta(minutes=settings.kiosk_pairing_minutes)
    try:
        await booth_access.start_pairing(
            request.app[STORAGE_KEY].sessions,
            kiosk_id,
            code_hash=token_digest(code),
            expires_at=expires_at,
            actor=identity.username,
            now=now,
        )
    except KioskNotFoundError:
        raise web.HTTPNotFound(text="No such kiosk.") from None
    link = f"{settings.resolved_service_url}/kiosk/{kiosk_id}/pair?code={code}"
    # Inline SVG: the staff pages' Content-Security-Policy allows no data: images.
    qr = (await asyncio.to_thread(qr_svg, link)).decode("utf-8")  # encoding is CPU work: off the event loop
    return staff_pages.html(
        request,
        "staff/kiosk_pairing.html",
        viewer=Viewer.of(identity),
        section=SECTION,
        kiosk_id=kiosk_id,
        link=link,
        # Our own QR encoder's SVG (kiosk/qr.py) of our own link: markup, not data.
        qr=Markup(qr),
        expires_at=expires_at,
        minutes=settings.kiosk_pairing_minutes,
    )


@requires(StaffRole.OPERATOR)
async def revoke(request: web.Request) -> web.StreamResponse:
    """Unpair the booth's screen: its credential is forgotten and its live preview closed at once."""
    identity = require_login(request)
    kiosk_id = request.match_info["kiosk_id"]
    try:
        await booth_access.revoke(
            request.app[STORAGE_KEY].sessions, kiosk_id, actor=identity.username, now=datetime.now(timezone.utc)
        )
    except KioskNotFoundError:
        raise web.HTTPNotFound(text="No such kiosk.") from None
    await request.app[BOOTHS_KEY].disconnect(kiosk_id)
    return web.Response(status=303, headers={"Location": f"{SECTION}#kiosk-{kiosk_id}"})

"""The staff dashboard's Kiosks section: every registered booth with its live status (from this
server's preview connections) and statistics, a link that opens its page, and forms to register
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
from html import escape

from aiohttp import web

from db import booths as booth_access
from db import service
from db.models import StaffRole
from db.service import ArtworkRecord, KioskRecord
from kiosk.auth import new_token, token_digest
from kiosk.errors import ArtBoothError, KioskNotFoundError
from kiosk.qr import qr_svg
from web.keys import BOOTHS_KEY, CATALOGUE_KEY, STORAGE_KEY
from web.staff import StaffIdentity, require_login, requires
from web.staff_pages import CSRF_FIELD, dashboard_page

SECTION = "/staff/kiosks"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(SECTION, kiosks_page)
    router.add_post(SECTION, register)
    router.add_post(SECTION + "/{kiosk_id}", update)
    router.add_post(SECTION + "/{kiosk_id}/pair", start_pairing)
    router.add_post(SECTION + "/{kiosk_id}/revoke", revoke)


def _csrf(identity: StaffIdentity) -> str:
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(identity.csrf_token)}">'


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith((".", "!", "?")) else ".")


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


def _status(request: web.Request, kiosk: KioskRecord) -> str:
    stats = request.app[BOOTHS_KEY].live_stats(kiosk.id)
    online = stats["online"]
    if kiosk.last_seen is not None:
        age = (datetime.now(timezone.utc) - kiosk.last_seen).total_seconds()
        last = f"last seen {kiosk.last_seen:%Y-%m-%d %H:%M:%S} UTC ({_ago(max(age, 0.0))})"
    else:
        last = "never seen: open its page on the booth"
    preview = stats["preview"]
    rows = [
        ("Captures since this server started", f"{stats['captures']} ({stats['failures']} failed)"),
    ]
    if preview is not None:
        rows += [
            ("Preview connection", str(preview.get("connection", ""))),
            ("Camera frames in / out", f"{preview['fps_in']:.1f} / {preview['fps_out']:.1f} fps"),
            ("Frames dropped", str(preview["drops"])),
            ("Processing", f"{preview['processing_ms_p50']:.0f} ms (p95 {preview['processing_ms_p95']:.0f} ms)"),
        ]
    table = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in rows)
    state = '<span class="online">Online</span>' if online else '<span class="offline">Offline</span>'
    live = " · live preview running" if preview is not None else ""
    return f'<p class="status">{state} · {escape(last)}{live}</p><table class="stats">{table}</table>'


def _pairing(identity: StaffIdentity, kiosk: KioskRecord) -> str:
    action = f"{SECTION}/{escape(kiosk.id)}"
    if kiosk.paired_at is None:
        state = '<span class="offline">Not paired</span>: its screen is refused until you pair it.'
        revoke = ""
    else:
        state = f"Paired {kiosk.paired_at:%Y-%m-%d %H:%M} UTC."
        revoke = (
            f'<form class="inline" method="post" action="{action}/revoke">{_csrf(identity)}'
            '<button type="submit" class="danger">Revoke its pairing</button></form>'
        )
    return (
        f'<p class="pairing">{state}</p><div class="pairing-actions">'
        f'<form class="inline" method="post" action="{action}/pair">{_csrf(identity)}'
        f'<button type="submit">Pair this booth</button></form>{revoke}</div>'
    )


def _artwork_choices(records: list[ArtworkRecord], chosen: set[str]) -> str:
    return "".join(
        f'<label class="check"><input type="checkbox" name="artworks" value="{escape(r.spec.id)}"'
        f'{" checked" if r.spec.id in chosen else ""}> {escape(r.spec.title)}'
        f'{" (disabled)" if not r.enabled else ""}</label>'
        for r in records
    )


def _body(
    request: web.Request,
    identity: StaffIdentity,
    kiosks: list[KioskRecord],
    records: list[ArtworkRecord],
    *,
    error: str | None,
    error_for: str | None,
    form: dict[str, str],
) -> str:
    sections = []
    for kiosk in kiosks:
        alert = f'<p class="error" role="alert">{escape(error)}</p>' if error and error_for == kiosk.id else ""
        offered = (
            f"{len(kiosk.artwork_ids)} chosen artwork{'s' if len(kiosk.artwork_ids) != 1 else ''}"
            if kiosk.artwork_ids
            else "every enabled artwork"
        )
        sections.append(
            f"""<section class="kiosk" id="kiosk-{escape(kiosk.id)}" data-kiosk="{escape(kiosk.id)}">
  <h2>{escape(kiosk.name)} <span class="kiosk-id">{escape(kiosk.id)}</span></h2>
  {alert}
  <p>{escape(kiosk.location) or '<span class="note">No location given.</span>'} · offers {escape(offered)} ·
  <a href="/kiosk/{escape(kiosk.id)}" target="_blank" rel="noopener">Open the kiosk page</a></p>
  {_status(request, kiosk)}
  {_pairing(identity, kiosk)}
  <details>
    <summary>Change its name, location or artworks</summary>
    <form class="panel" method="post" action="{SECTION}/{escape(kiosk.id)}">
      {_csrf(identity)}
      <label>Name <input name="name" value="{escape(kiosk.name)}" maxlength="200" required></label>
      <label>Location <input name="location" value="{escape(kiosk.location)}" maxlength="300"></label>
      <fieldset class="choices"><legend>Artworks it offers</legend>
        <p class="note">None ticked: every enabled artwork. Disabled ones are not offered until enabled again.</p>
        {_artwork_choices(records, set(kiosk.artwork_ids))}
      </fieldset>
      <button type="submit">Save</button>
    </form>
  </details>
</section>"""
        )
    register_alert = f'<p class="error" role="alert">{escape(error)}</p>' if error and error_for is None else ""
    listing = "".join(sections) or '<p class="note">No kiosk yet. Register one below, then pair its screen.</p>'
    return f"""<h1>Kiosks</h1>
<p class="note">Status as of this page's loading (<a href="{SECTION}">refresh</a>). A booth's screen works once
it is registered here and paired: "Pair this booth" shows a one-time link to open on the booth's screen.</p>
{listing}
{register_alert}
<form class="panel" method="post" action="{SECTION}">
  <h2>Register a kiosk</h2>
  {_csrf(identity)}
  <label>Id <input name="id" value="{escape(form.get('id', ''))}" pattern="[a-z0-9][a-z0-9\\-]{{0,63}}" maxlength="64" required
    autocapitalize="none"></label>
  <p class="note">Lowercase letters, digits and dashes, e.g. <code>east-wing-1</code>: the booth opens /kiosk/<em>id</em>.</p>
  <label>Name <input name="name" value="{escape(form.get('name', ''))}" maxlength="200"></label>
  <label>Location <input name="location" value="{escape(form.get('location', ''))}" maxlength="300"></label>
  <button type="submit">Register</button>
</form>"""


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
    body = _body(request, identity, kiosks, records, error=error, error_for=error_for, form=form or {})
    return _section_page("Kiosks", body, identity, status=status)


def _section_page(title: str, body: str, identity: StaffIdentity, *, status: int = 200) -> web.Response:
    page = dashboard_page(
        title,
        body,
        username=identity.username,
        is_admin=identity.role is StaffRole.ADMIN,
        csrf_token=identity.csrf_token,
        section=SECTION,
    )
    return web.Response(text=page, content_type="text/html", status=status)


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
    link = f"{settings.resolved_public_url}/kiosk/{kiosk_id}/pair?code={code}"
    # Inline SVG: the staff pages' Content-Security-Policy allows no data: images.
    qr = (await asyncio.to_thread(qr_svg, link)).decode("utf-8")  # encoding is CPU work: off the event loop
    body = f"""<h1>Pair the booth {escape(kiosk_id)}</h1>
<p>Open this link <strong>on the booth's screen</strong> (type it, or scan the code with the booth's camera app)
and choose "Pair this screen" there. Whichever browser confirms it becomes the booth, so do not confirm it here.</p>
<p class="pairing-link"><a href="{escape(link)}" rel="noreferrer" target="_blank"><code>{escape(link)}</code></a></p>
<div class="qr pairing-qr" role="img" aria-label="QR code of the pairing link">{qr}</div>
<p class="note">The link works once, until {expires_at:%H:%M} UTC ({settings.kiosk_pairing_minutes} minutes). A screen
paired with this booth before keeps working until the new one is paired; then it is cut off.</p>
<p><a class="button" href="{SECTION}#kiosk-{escape(kiosk_id)}">Back to the kiosks</a></p>"""
    return _section_page("Pair a booth", body, identity)


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

"""The booth: its touch-screen page, pairing, WebRTC signalling for the live preview, capture, status.

One kiosk id per booth (``/kiosk/{kiosk}``). The preview runs in this process (threads, off
the event loop); captures run in the compose worker processes, so a capture never stalls
the preview.

Who may use a booth: staff register a kiosk in the dashboard and pair its screen once
(web/dashboard_kiosks.py makes a one-time pairing link; opening it on the booth and confirming
exchanges it here for the booth's credential, 256 random bits of which the database keeps only
the SHA-256). The credential travels in the cookie ``artbooth_booth``: HttpOnly, SameSite=Strict,
Secure when the site is HTTPS, and set twice with the same value, once for the booth's page
(Path=/kiosk/{id}) and once for its API (Path=/api/kiosks/{id}), so the browser sends it only
to that booth's own paths (no other page of the site sees it, and a browser paired as two
booths keeps them apart). A cookie path cannot name two paths, hence the two cookies. Every
booth request must carry the credential of that booth, and its POSTs the header
``X-ArtBooth-Booth: 1``, which another site cannot make a browser send without a CORS
preflight we never grant; or come from a signed-in staff session (operator or admin), whose
POSTs carry its CSRF token as ``X-CSRF-Token``. Nobody: 401; someone else: 403. Opening the
page of an unknown or unpaired kiosk creates nothing: it shows how to set the booth up.

Looks (kiosk/looks.py): choosing an artwork answers the look it offers, as the catalogue holds it
then (so staff's change reaches a booth at its next artwork choice, without reloading the page);
where it offers "visitor", kiosk.js lets the visitor tap one before the countdown and the capture
sends it as ``look``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.cookies import SimpleCookie

from aiohttp import hdrs, web

from db import booths as booth_access
from db import examples as examples_db
from db.models import StaffRole
from db.service import KIOSK_ID
from db.store import StoredFileMissingError
from kiosk.auth import looks_like_token, new_token, role_allows, same_token, token_digest
from kiosk.booths import CAMERA_STATES, Booths
from kiosk.catalogue import look_harmonization
from kiosk.errors import ArtBoothError, ExitCode, exit_code_for
from kiosk.looks import LookError, offered_look
from kiosk.workers import PoolBusyError
from pipeline.codec import encode_image
from streaming.ice import include_loopback_candidates
from streaming.preview import PreviewModels
from streaming.sessions import KioskPeers, OfferError
from web import visitor_text
from web.keys import BOOTHS_KEY, CATALOGUE_KEY, PAGES_KEY, POOL_KEY, SETTINGS_KEY, STORAGE_KEY
from web.artwork_json import spec_json
from web.staff import CSRF_HEADER, CSRF_MESSAGE, STATE_CHANGING, StaffIdentity, cookie_is_secure, staff_identity
from web.uploads import BUSY_RETRY_AFTER_S, UploadRefusedError, read_file, read_form, status_for

log = logging.getLogger(__name__)

BOOTH_COOKIE = "artbooth_booth"
# Sent by kiosk.js on every POST: a header a cross-site form or simple request cannot carry.
BOOTH_HEADER = "X-ArtBooth-Booth"
# What a booth may send as its capture id (kiosk.js sends 32 random hex digits).
CAPTURE_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")
# Browsers keep a cookie at most 400 days (Chromium's cap); the credential lasts until staff
# revoke it or pair the booth again. Without an age the booth would be unpaired by every reboot.
BOOTH_COOKIE_MAX_AGE_S = 400 * 24 * 3600

# What a visitor sees when a capture fails (web/visitor_text.py, translated into the booth's language):
# messages a visitor can act on, by error kind; anything else gets FRIENDLY_RETRY.
FRIENDLY_RETRY = visitor_text.FRIENDLY_RETRY
_VISITOR_MESSAGES = {
    ExitCode.NO_PERSON: visitor_text.NO_PERSON_MESSAGE,
    ExitCode.ARTWORK_NOT_FOUND: visitor_text.ARTWORK_GONE_MESSAGE,
    ExitCode.NOT_AN_IMAGE: visitor_text.NOT_A_PHOTO_MESSAGE,
    ExitCode.TRUNCATED_IMAGE: visitor_text.NOT_A_PHOTO_MESSAGE,
    ExitCode.EMPTY_FILE: visitor_text.NOT_A_PHOTO_MESSAGE,
    ExitCode.IMAGE_TOO_LARGE: visitor_text.TOO_LARGE_MESSAGE,
}
NOT_PAIRED_MESSAGE = "this booth's screen is not paired: staff pair it from the Kiosks page of the staff dashboard"
WRONG_BOOTH_MESSAGE = (
    "this screen is not (or no longer) paired with booth {kiosk}: staff revoked it or paired another screen; "
    "ask them to pair it again from the Kiosks page"
)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/kiosk/{kiosk}", kiosk_page)
    router.add_get("/kiosk/{kiosk}/pair", pairing_page)
    router.add_post("/kiosk/{kiosk}/pair", pair)
    router.add_post("/api/kiosks/{kiosk}/offer", offer)
    router.add_post("/api/kiosks/{kiosk}/artwork", choose_artwork)
    router.add_post("/api/kiosks/{kiosk}/capture", capture)
    router.add_post("/api/kiosks/{kiosk}/heartbeat", heartbeat)
    router.add_get("/api/kiosks/{kiosk}/stats", stats)
    router.add_get("/api/kiosks/{kiosk}/examples/{photo}.jpg", example_photo)


async def live_preview(app: web.Application):
    """cleanup_ctx: the preview's models and threads, and closing every peer at shutdown."""
    settings = app[SETTINGS_KEY]
    include_loopback_candidates()
    # preview_threads renders at once; further kiosks wait their turn (their stale frames are dropped).
    executor = ThreadPoolExecutor(max_workers=settings.preview_threads, thread_name_prefix="preview")
    models = await asyncio.get_running_loop().run_in_executor(executor, PreviewModels, settings)
    # The capture's harmonize values with staff's dashboard changes, as the compose pool has them.
    models.use_harmonization(app[STORAGE_KEY].settings)
    booths = Booths(
        settings=settings,
        catalogue=app[CATALOGUE_KEY],
        peers=KioskPeers(settings, models.renderer, executor),
        executor=executor,
        preview_models=models,
    )
    app[BOOTHS_KEY] = booths
    yield
    await booths.peers.close_all()
    executor.shutdown(wait=True, cancel_futures=True)


def _kiosk_id(request: web.Request) -> str:
    kiosk_id = request.match_info["kiosk"]
    if not KIOSK_ID.fullmatch(kiosk_id):
        raise web.HTTPNotFound(text="kiosk ids are 1-64 lowercase letters, digits and dashes")
    return kiosk_id


def _problem(status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": message} if code is None else {"error": message, "code": code}
    return web.json_response(body, status=status, headers=headers)


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "the body must be JSON"}', content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "the body must be a JSON object"}', content_type="application/json")
    return body


# --- who is asking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoothCaller:
    """Who a booth request is from, once let in: the booth's own screen, or signed-in staff."""

    staff: StaffIdentity | None = None

    @property
    def is_booth(self) -> bool:
        return self.staff is None


class BoothRefusal(Exception):
    """Not let in: ``status`` 401 (nobody), 403 (someone else, or a POST without its header) or
    404 (staff asking for a kiosk nobody registered); ``registered``: whether the kiosk exists."""

    def __init__(self, status: int, message: str, *, registered: bool) -> None:
        super().__init__(message)
        self.status = status
        self.registered = registered


async def _caller(request: web.Request, kiosk_id: str) -> BoothCaller:
    """The booth's own screen or operating staff, or BoothRefusal."""
    booth = await booth_access.access(request.app[STORAGE_KEY].sessions, kiosk_id)
    presented = request.cookies.get(BOOTH_COOKIE)
    if (
        booth is not None
        and booth.credential_hash is not None
        and looks_like_token(presented)
        and same_token(token_digest(presented), booth.credential_hash)
    ):
        if request.method in STATE_CHANGING and request.headers.get(BOOTH_HEADER) != "1":
            raise BoothRefusal(403, f"a booth's requests must carry the header {BOOTH_HEADER}: 1", registered=True)
        return BoothCaller()
    identity = await staff_identity(request)
    if identity is not None and role_allows(identity.role, StaffRole.OPERATOR):
        if request.method in STATE_CHANGING and not same_token(request.headers.get(CSRF_HEADER), identity.csrf_token):
            raise BoothRefusal(403, CSRF_MESSAGE, registered=booth is not None)
        if booth is None:
            raise BoothRefusal(404, f"no kiosk {kiosk_id!r} is registered; register it on the Kiosks page first", registered=False)
        return BoothCaller(staff=identity)
    if presented is not None or identity is not None:
        raise BoothRefusal(403, WRONG_BOOTH_MESSAGE.format(kiosk=kiosk_id), registered=booth is not None)
    raise BoothRefusal(401, NOT_PAIRED_MESSAGE, registered=booth is not None)


async def _api_caller(request: web.Request) -> tuple[str, BoothCaller]:
    """For the booth's API: its kiosk id and caller, or the refusal as a JSON answer to raise."""
    kiosk_id = _kiosk_id(request)
    try:
        return kiosk_id, await _caller(request, kiosk_id)
    except BoothRefusal as refusal:
        log.warning("refused %s %s from %s: %s", request.method, request.path, request.remote, refusal)
        refused = {401: web.HTTPUnauthorized, 403: web.HTTPForbidden, 404: web.HTTPNotFound}[refusal.status]
        raise refused(text=json.dumps({"error": str(refusal)}), content_type="application/json") from None


async def _touch(request: web.Request, kiosk_id: str, caller: BoothCaller, *, camera: str | None = None) -> None:
    """Note the booth is alive (with its camera's state, when it said), for every serve node to
    see; staff trying its page or API are not the booth."""
    if caller.is_booth:
        await request.app[BOOTHS_KEY].note_alive(kiosk_id, camera=camera)


def _set_booth_cookies(request: web.Request, response: web.StreamResponse, kiosk_id: str, credential: str) -> None:
    # Two Set-Cookie headers of one name (aiohttp's set_cookie keeps one per name): one per booth path.
    for path in (f"/kiosk/{kiosk_id}", f"/api/kiosks/{kiosk_id}"):
        cookie = SimpleCookie()
        cookie[BOOTH_COOKIE] = credential
        morsel = cookie[BOOTH_COOKIE]
        morsel.update({"path": path, "max-age": str(BOOTH_COOKIE_MAX_AGE_S), "httponly": True, "samesite": "Strict"})
        if cookie_is_secure(request):
            morsel["secure"] = True
        response.headers.add(hdrs.SET_COOKIE, morsel.OutputString())


# --- the booth's pages -------------------------------------------------------------------------------


# No other site may frame the booth's pages, and they post forms only here. (Scripts are not
# restricted: the browser tests evaluate their probes in the page; Jinja2's tojson keeps data inert.)
BOOTH_PAGE_POLICY = "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"


def booth_language(request: web.Request) -> str:
    """The language the booth's visitor chose (``?lang=`` on the page, ``language`` in a capture's
    form), else the museum's default: a booth is a shared screen, its browser's languages are not
    the visitor's."""
    settings = request.app[SETTINGS_KEY]
    catalogues = request.app[PAGES_KEY].catalogues
    return catalogues.known(request.query.get("lang")) or catalogues.known(settings.default_language) or "en"


def _page(request: web.Request, template: str, *, status: int = 200, **context: object) -> web.Response:
    html = request.app[PAGES_KEY].render(f"visitor/{template}", booth_language(request), **context)
    # The pairing code and a staff user's CSRF token appear in these pages: never cached, never referred.
    return web.Response(
        text=html,
        content_type="text/html",
        status=status,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": BOOTH_PAGE_POLICY,
            "X-Content-Type-Options": "nosniff",
        },
    )


async def kiosk_page(request: web.Request) -> web.Response:
    kiosk_id = _kiosk_id(request)
    try:
        caller = await _caller(request, kiosk_id)
    except BoothRefusal as refusal:
        # The API answers 401 whether or not the kiosk exists; the page tells staff which step is missing.
        status = refusal.status if refusal.registered else 404
        reason = str(refusal) if refusal.registered else f"no kiosk {kiosk_id!r} is registered yet"
        return _not_set_up(request, kiosk_id, reason, status=status)
    await _touch(request, kiosk_id, caller)
    # Only the artworks staff chose for this kiosk, when they chose some.
    specs = [record.spec for record in await request.app[CATALOGUE_KEY].offered_at(kiosk_id)]
    # The settings in effect: the privacy notice follows staff's changes without a restart.
    settings = request.app[STORAGE_KEY].settings
    pages, language = request.app[PAGES_KEY], booth_language(request)
    return _page(
        request,
        "booth.html",
        kiosk_id=kiosk_id,
        settings=settings,
        default_language=pages.catalogues.known(settings.default_language) or "en",
        artworks=[spec_json(spec) for spec in specs],
        text=visitor_text.booth_script_text(pages, language),
        privacy_notice=visitor_text.privacy_notice(settings, pages, language),
        example_photos=[f"/api/kiosks/{kiosk_id}/examples/{photo_id}.jpg" for photo_id in await _examples(request, kiosk_id)],
        staff_csrf_token=caller.staff.csrf_token if caller.staff is not None else None,
    )


async def _examples(request: web.Request, kiosk_id: str) -> dict[str, str]:
    """The example photos the booth's attract screen may show now (photo id -> result key); none
    unless staff allow them (setting attract_example_photos)."""
    settings = request.app[STORAGE_KEY].settings
    if not settings.attract_example_photos:
        return {}
    days = settings.photo_retention_days
    return await examples_db.example_photos(
        request.app[STORAGE_KEY].sessions,
        kiosk_id,
        taken_since=datetime.now(timezone.utc) - timedelta(days=days) if days > 0 else None,
        limit=settings.attract_example_count,
    )


async def example_photo(request: web.Request) -> web.Response:
    """One of the booth's example photos, for its attract screen only: the paired booth (or staff)
    get it while it is one of the examples; any other photo, or with examples off, is not found."""
    kiosk_id, _ = await _api_caller(request)
    not_found = web.HTTPNotFound(text=json.dumps({"error": "no such example photo"}), content_type="application/json")
    result_key = (await _examples(request, kiosk_id)).get(request.match_info["photo"])
    if result_key is None:
        raise not_found
    try:
        body = await request.app[STORAGE_KEY].store.get(result_key)
    except StoredFileMissingError:  # deleted a moment ago
        raise not_found from None
    # A visitor's photo: kept by no cache, so it is gone from the booth once it stops being an example.
    return web.Response(body=body, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _not_set_up(request: web.Request, kiosk_id: str, reason: str, *, status: int) -> web.Response:
    """What an unknown, unpaired or revoked booth's screen shows: that staff must set it up, and how
    (``reason``, in English, is for staff)."""
    reason = reason[:1].upper() + reason[1:] + ("" if reason.endswith(".") else ".")
    return _page(request, "booth_not_set_up.html", status=status, kiosk_id=kiosk_id, reason=reason)


async def pairing_page(request: web.Request) -> web.Response:
    """What the pairing link opens on the booth: a button that pairs this screen. A GET changes
    nothing, so a link preview or prefetch cannot spend the code."""
    kiosk_id = _kiosk_id(request)
    code = request.query.get("code", "")
    if not looks_like_token(code):
        return _not_set_up(request, kiosk_id, "this pairing link is incomplete: copy all of it", status=400)
    return _page(request, "booth_pairing.html", kiosk_id=kiosk_id, code=code)


async def pair(request: web.Request) -> web.Response:
    """Exchange the pairing code for the booth's credential; its cookies go with the redirect to the booth page."""
    kiosk_id = _kiosk_id(request)
    try:
        code = (await read_form(request)).get("code")
    except UploadRefusedError as exc:
        return _not_set_up(request, kiosk_id, str(exc), status=status_for(exc.exit_code))
    credential = new_token()
    paired = looks_like_token(code) and await booth_access.complete_pairing(
        request.app[STORAGE_KEY].sessions,
        kiosk_id,
        code_hash=token_digest(code),
        credential_hash=token_digest(credential),
        now=datetime.now(timezone.utc),
    )
    if not paired:
        log.warning("refused pairing booth %s from %s: wrong, used or expired code", kiosk_id, request.remote)
        message = "this pairing link has expired or was used already: ask staff for a new one"
        return _not_set_up(request, kiosk_id, message, status=403)
    # A screen paired before (another one, or this one's earlier pairing) loses its live preview now.
    await request.app[BOOTHS_KEY].disconnect(kiosk_id)
    log.info("booth %s paired from %s", kiosk_id, request.remote)
    response = web.Response(status=303, headers={"Location": f"/kiosk/{kiosk_id}", "Cache-Control": "no-store"})
    _set_booth_cookies(request, response, kiosk_id, credential)
    return response


# --- the booth's API -----------------------------------------------------------------------------------


async def offer(request: web.Request) -> web.Response:
    kiosk_id, caller = await _api_caller(request)
    body = await _json_body(request)
    sdp, kind, artwork_id = body.get("sdp"), body.get("type"), body.get("artwork")
    if not isinstance(sdp, str) or not isinstance(kind, str) or not isinstance(artwork_id, str):
        return _problem(400, "send {sdp, type, artwork}: the browser's offer and the chosen artwork's id")
    booths = request.app[BOOTHS_KEY]
    try:
        artwork = await booths.artwork(kiosk_id, artwork_id)
        answer_sdp, answer_type = await booths.peers.answer(kiosk_id, sdp, kind, artwork)
    except OfferError as exc:
        return _problem(400, str(exc))
    except ArtBoothError as exc:
        return _problem(404, str(exc))
    await _touch(request, kiosk_id, caller)
    return web.json_response({"sdp": answer_sdp, "type": answer_type})


async def choose_artwork(request: web.Request) -> web.Response:
    kiosk_id, _ = await _api_caller(request)
    artwork_id = (await _json_body(request)).get("artwork")
    if not isinstance(artwork_id, str):
        return _problem(400, "send {artwork}: the chosen artwork's id")
    booths = request.app[BOOTHS_KEY]
    try:
        record = await request.app[CATALOGUE_KEY].offered_at_kiosk(kiosk_id, artwork_id)
        artwork = await booths.artwork(kiosk_id, artwork_id)
    except ArtBoothError as exc:
        return _problem(404, str(exc))
    # The settings in effect: staff's dashboard change of the service's look counts from now.
    look = offered_look(record.look, request.app[STORAGE_KEY].settings)
    # Ready the artwork before the countdown ends (its style too where the visitor may be painted in).
    request.app[POOL_KEY].prepare(await request.app[CATALOGUE_KEY].source_of(record), painted=look != "realistic")
    return web.json_response({"artwork": artwork_id, "live": booths.peers.set_artwork(kiosk_id, artwork), "look": look})


async def capture(request: web.Request) -> web.Response:
    """Compose the still the page sent (or the newest preview frame), store it, answer with its link."""
    kiosk_id, caller = await _api_caller(request)
    booths = request.app[BOOTHS_KEY]
    status = booths.status(kiosk_id)
    if status.capturing:
        return _problem(409, _say(request, visitor_text.ALREADY_CAPTURING_MESSAGE), code="capturing")
    status.capturing = True
    try:
        await _touch(request, kiosk_id, caller)
        return await _capture(request, kiosk_id, booths)
    finally:
        status.capturing = False


def _say(request: web.Request, message: str) -> str:
    """A message for the visitor, in the language the booth sent (``?lang=``)."""
    return request.app[PAGES_KEY].gettext(booth_language(request), message)


def _busy(message: str) -> web.Response:
    return _problem(503, message, code="busy", headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})


async def _capture(request: web.Request, kiosk_id: str, booths: Booths) -> web.Response:
    started = time.monotonic()
    try:
        form = await read_form(request)
    except UploadRefusedError as exc:
        message = _VISITOR_MESSAGES[ExitCode.IMAGE_TOO_LARGE] if exc.exit_code is ExitCode.IMAGE_TOO_LARGE else FRIENDLY_RETRY
        message = _say(request, message)
        log.warning("capture at kiosk %s refused: %s", kiosk_id, exc)
        return _problem(status_for(exc.exit_code), message, code=exc.exit_code.name.lower())
    artwork_id = form.get("artwork")
    if not isinstance(artwork_id, str) or not artwork_id:
        return _problem(400, "choose an artwork (the 'artwork' field)")
    # The visitor's tap where the artwork lets them choose; absent: the look the artwork offers.
    chosen_look = form.get("look")
    if chosen_look is not None and not isinstance(chosen_look, str):
        return _problem(400, "the 'look' field is text: realistic or painted")
    # The booth's id for this press of the button (kiosk.js), the same when it asks again after a
    # failed request: with workers elsewhere (serve --role web) asking again reaches the same photo.
    capture_id = form.get("capture_id")
    if capture_id is not None and not (isinstance(capture_id, str) and CAPTURE_ID_PATTERN.fullmatch(capture_id)):
        return _problem(400, "capture_id is 8 to 64 letters, digits, '-' or '_'")
    still = form.get("photo")
    if isinstance(still, web.FileField):
        photo_bytes = await read_file(still)
    else:
        frame = booths.peers.latest_frame(kiosk_id)
        if frame is None:
            return _problem(409, _say(request, visitor_text.CAMERA_NOT_CONNECTED_MESSAGE), code="no_camera")
        photo_bytes = await asyncio.get_running_loop().run_in_executor(booths.executor, encode_image, frame, ".jpg")
    status = booths.status(kiosk_id)
    # The visitor now looks at the "processing" screen: the preview's cores go to the capture.
    booths.peers.pause_rendering(kiosk_id, True)
    try:
        catalogue = request.app[CATALOGUE_KEY]
        record = await catalogue.offered_at_kiosk(kiosk_id, artwork_id)
        harmonization = look_harmonization(
            record, request.app[POOL_KEY].harmonization, request.app[STORAGE_KEY].settings, chosen=chosen_look or None
        )
        source = await catalogue.source_of(record)
        outcome, saved = await request.app[POOL_KEY].compose_photo(
            photo_bytes,
            source,
            kiosk_id=kiosk_id,
            harmonization=harmonization,
            language=booth_language(request),
            capture_id=capture_id,
        )
        if not outcome.ok:
            status.failures += 1
            code = outcome.error_code
            return _problem(status_for(code), _say(request, _VISITOR_MESSAGES.get(code, FRIENDLY_RETRY)), code=code.name.lower())
    except PoolBusyError:
        status.failures += 1
        return _busy(_say(request, visitor_text.BUSY_MESSAGE))
    except LookError as exc:
        # Not the visitor's doing (kiosk.js sends one of the looks): say what was wrong, for whoever debugs it.
        return _problem(400, str(exc), code="bad_look")
    except ArtBoothError as exc:
        status.failures += 1
        log.warning("capture at kiosk %s failed: %s", kiosk_id, exc)
        code = exit_code_for(exc)
        if code is ExitCode.ARTWORK_NOT_FOUND:
            return _problem(404, _say(request, _VISITOR_MESSAGES[code]), code=code.name.lower())
        return _busy(_say(request, FRIENDLY_RETRY))
    finally:
        booths.peers.pause_rendering(kiosk_id, False)
    stages = outcome.report["timings_ms"]
    log.info(
        "capture at kiosk %s: %s look, a %s still, answered in %.0f ms, of which %.0f ms composing (%s)",
        kiosk_id, harmonization.look, "x".join(map(str, saved.capture_size or ("?", "?"))),
        (time.monotonic() - started) * 1000, sum(stages.values()),
        ", ".join(f"{stage} {ms:.0f}" for stage, ms in stages.items()),
    )
    base = f"/p/{saved.token}"
    return web.json_response(
        {
            "photo_id": saved.photo_id,
            "download_url": saved.url,
            "expires_at": saved.expires_at.isoformat(),
            "image": f"{base}/photo.jpg",
            "qr_svg": f"{base}/qr.svg",
            "qr_png": f"{base}/qr.png",
            "people": outcome.report["people"],
            "framing": outcome.report["framing"],
            "score": outcome.report.get("score"),
            "look": outcome.report.get("look", harmonization.look),
            # The still the camera delivered, as the booth sent it (or the preview frame it fell back to).
            "capture_size": _size_json(saved.capture_size),
        }
    )


def _size_json(size: tuple[int, int] | None) -> dict[str, int] | None:
    return None if size is None else {"width": size[0], "height": size[1]}


async def heartbeat(request: web.Request) -> web.Response:
    """The booth is alive; its body (optional) says how its camera is, for staff: {"camera": "ok"}."""
    kiosk_id, caller = await _api_caller(request)
    camera = (await _json_body(request)).get("camera") if request.can_read_body else None
    if camera is not None and camera not in CAMERA_STATES:
        return _problem(400, f"camera is one of {', '.join(CAMERA_STATES)}")
    await _touch(request, kiosk_id, caller, camera=camera)
    return web.json_response({"kiosk": kiosk_id, "connected": request.app[BOOTHS_KEY].peers.stats(kiosk_id) is not None})


async def stats(request: web.Request) -> web.Response:
    kiosk_id, _ = await _api_caller(request)
    return web.json_response(request.app[BOOTHS_KEY].live_stats(kiosk_id))

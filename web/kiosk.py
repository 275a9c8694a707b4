"""The booth: its touch-screen page, WebRTC signalling for the live preview, capture, status.

One kiosk id per booth (``/kiosk/{kiosk}``). The preview runs in this process (threads, off
the event loop); captures run in the compose worker processes, so a capture never stalls
the preview.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from aiohttp import web

from db import service
from db.service import KIOSK_ID
from kiosk.booths import Booths
from kiosk.errors import ArtBoothError, ExitCode, exit_code_for
from kiosk.workers import PoolBusyError
from pipeline.codec import encode_image
from streaming.ice import include_loopback_candidates
from streaming.preview import PreviewModels
from streaming.sessions import KioskPeers, OfferError
from web import pages
from web.keys import BOOTHS_KEY, CATALOGUE_KEY, SETTINGS_KEY, STORAGE_KEY
from web.uploads import compose_and_store

log = logging.getLogger(__name__)

# What a visitor sees when a capture fails for a reason that is not theirs to fix.
FRIENDLY_RETRY = "Sorry, that did not work. Please try again."
# Messages a visitor can act on, by error kind; anything else gets FRIENDLY_RETRY.
_VISITOR_MESSAGES = {
    ExitCode.NO_PERSON: "We could not see you. Step into the frame and try again.",
    ExitCode.ARTWORK_NOT_FOUND: "This artwork is no longer available. Please choose another one.",
}


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/kiosk/{kiosk}", kiosk_page)
    router.add_post("/api/kiosks/{kiosk}/offer", offer)
    router.add_post("/api/kiosks/{kiosk}/artwork", choose_artwork)
    router.add_post("/api/kiosks/{kiosk}/capture", capture)
    router.add_post("/api/kiosks/{kiosk}/heartbeat", heartbeat)
    router.add_get("/api/kiosks/{kiosk}/stats", stats)


async def live_preview(app: web.Application):
    """cleanup_ctx: the preview's models and threads, and closing every peer at shutdown."""
    settings = app[SETTINGS_KEY]
    include_loopback_candidates()
    # preview_threads renders at once; further kiosks wait their turn (their stale frames are dropped).
    executor = ThreadPoolExecutor(max_workers=settings.preview_threads, thread_name_prefix="preview")
    models = await asyncio.get_running_loop().run_in_executor(executor, PreviewModels, settings)
    booths = Booths(
        settings=settings,
        catalogue=app[CATALOGUE_KEY],
        peers=KioskPeers(settings, models.renderer, executor),
        executor=executor,
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


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "the body must be JSON"}', content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "the body must be a JSON object"}', content_type="application/json")
    return body


async def _touch(request: web.Request, kiosk_id: str) -> None:
    request.app[BOOTHS_KEY].status(kiosk_id).last_seen = time.monotonic()
    await service.touch_kiosk(
        request.app[STORAGE_KEY].sessions, kiosk_id, name=kiosk_id, location="", now=datetime.now(timezone.utc)
    )


async def kiosk_page(request: web.Request) -> web.Response:
    kiosk_id = _kiosk_id(request)
    await _touch(request, kiosk_id)
    # Only the artworks staff chose for this kiosk, when they chose some.
    specs = [record.spec for record in await request.app[CATALOGUE_KEY].offered_at(kiosk_id)]
    # The settings in effect: the privacy notice follows staff's changes without a restart.
    return web.Response(text=pages.kiosk(kiosk_id, specs, request.app[STORAGE_KEY].settings), content_type="text/html")


async def offer(request: web.Request) -> web.Response:
    kiosk_id = _kiosk_id(request)
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
    await _touch(request, kiosk_id)
    return web.json_response({"sdp": answer_sdp, "type": answer_type})


async def choose_artwork(request: web.Request) -> web.Response:
    kiosk_id = _kiosk_id(request)
    artwork_id = (await _json_body(request)).get("artwork")
    if not isinstance(artwork_id, str):
        return _problem(400, "send {artwork}: the chosen artwork's id")
    booths = request.app[BOOTHS_KEY]
    try:
        artwork = await booths.artwork(kiosk_id, artwork_id)
    except ArtBoothError as exc:
        return _problem(404, str(exc))
    return web.json_response({"artwork": artwork_id, "live": booths.peers.set_artwork(kiosk_id, artwork)})


async def capture(request: web.Request) -> web.Response:
    """Compose the still the page sent (or the newest preview frame), store it, answer with its link."""
    kiosk_id = _kiosk_id(request)
    booths = request.app[BOOTHS_KEY]
    status = booths.status(kiosk_id)
    if status.capturing:
        return _problem(409, "A photo is already being made. One moment, please.")
    status.capturing = True
    try:
        await _touch(request, kiosk_id)  # photos name their kiosk, so it must be registered
        return await _capture(request, kiosk_id, booths)
    finally:
        status.capturing = False


async def _capture(request: web.Request, kiosk_id: str, booths: Booths) -> web.Response:
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        return _problem(413, "The photo is too large.")
    artwork_id = form.get("artwork")
    if not isinstance(artwork_id, str) or not artwork_id:
        return _problem(400, "choose an artwork (the 'artwork' field)")
    still = form.get("photo")
    if isinstance(still, web.FileField):
        photo_bytes = still.file.read()
    else:
        frame = booths.peers.latest_frame(kiosk_id)
        if frame is None:
            return _problem(409, "The camera is not connected yet. Please try again in a moment.")
        photo_bytes = await asyncio.get_running_loop().run_in_executor(booths.executor, encode_image, frame, ".jpg")
    status = booths.status(kiosk_id)
    # The visitor now looks at the "processing" screen: the preview's cores go to the capture.
    booths.peers.pause_rendering(kiosk_id, True)
    try:
        catalogue = request.app[CATALOGUE_KEY]
        source = await catalogue.source_of(await catalogue.offered_at_kiosk(kiosk_id, artwork_id))
        outcome, saved = await compose_and_store(request.app, photo_bytes, source, kiosk_id=kiosk_id)
        if not outcome.ok:
            status.failures += 1
            return _problem(422, _VISITOR_MESSAGES.get(outcome.error_code, FRIENDLY_RETRY))
    except PoolBusyError:
        status.failures += 1
        return _problem(503, FRIENDLY_RETRY)
    except ArtBoothError as exc:
        status.failures += 1
        log.warning("capture at kiosk %s failed: %s", kiosk_id, exc)
        code = exit_code_for(exc)
        return _problem(404 if code is ExitCode.ARTWORK_NOT_FOUND else 503, _VISITOR_MESSAGES.get(code, FRIENDLY_RETRY))
    finally:
        booths.peers.pause_rendering(kiosk_id, False)
    status.captures += 1
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
        }
    )


async def heartbeat(request: web.Request) -> web.Response:
    kiosk_id = _kiosk_id(request)
    await _touch(request, kiosk_id)
    return web.json_response({"kiosk": kiosk_id, "connected": request.app[BOOTHS_KEY].peers.stats(kiosk_id) is not None})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[BOOTHS_KEY].live_stats(_kiosk_id(request)))
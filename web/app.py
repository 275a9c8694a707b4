"""The aiohttp application: the artwork gallery and composing an uploaded photo."""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path

import cv2
from aiohttp import web

from kiosk.artworks import ArtworkLibrary
from kiosk.errors import ArtBoothError, ExitCode
from kiosk.models import ModelStore
from kiosk.settings import Settings
from kiosk.workers import ComposeOutcome, ComposePool, PoolBusyError
from pipeline.codec import encode_image
from web import pages

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
THUMBNAIL_LONG_SIDE = 480

SETTINGS_KEY = web.AppKey("settings", Settings)
LIBRARY_KEY = web.AppKey("library", ArtworkLibrary)
POOL_KEY = web.AppKey("pool", ComposePool)
THUMBNAILS_KEY = web.AppKey("thumbnails", dict)

# Which HTTP status each kind of refused input gets.
_STATUS_FOR_CODE = {
    ExitCode.EMPTY_FILE: 400,
    ExitCode.NOT_AN_IMAGE: 415,
    ExitCode.TRUNCATED_IMAGE: 400,
    ExitCode.IMAGE_TOO_LARGE: 413,
    ExitCode.NO_PERSON: 422,
    ExitCode.ARTWORK_NOT_FOUND: 404,
}


def create_app(settings: Settings) -> web.Application:
    # Multipart overhead on top of the largest photo we accept.
    app = web.Application(client_max_size=settings.max_upload_bytes + 64 * 1024)
    app[SETTINGS_KEY] = settings
    app[LIBRARY_KEY] = ArtworkLibrary(settings)
    app[THUMBNAILS_KEY] = {}
    app.router.add_get("/", gallery_page)
    app.router.add_post("/compose", compose_page)
    app.router.add_get("/api/artworks", artworks_api)
    app.router.add_post("/api/compose", compose_api)
    app.router.add_get("/artworks/{artwork_id}/thumbnail.jpg", thumbnail)
    app.router.add_static("/static", STATIC_DIR)
    app.cleanup_ctx.append(_compose_pool)
    return app


async def _compose_pool(app: web.Application):
    settings = app[SETTINGS_KEY]
    # Fail at start, with the fix named, rather than on the first visitor's photo.
    await asyncio.get_running_loop().run_in_executor(None, ModelStore(settings).check_capture_models)
    pool = ComposePool(settings)
    app[POOL_KEY] = pool
    await pool.warm_up()
    log.info("compose pool ready with %d worker(s)", settings.compose_workers)
    yield
    await asyncio.get_running_loop().run_in_executor(None, pool.close)


async def gallery_page(request: web.Request) -> web.Response:
    specs = request.app[LIBRARY_KEY].specs()
    return web.Response(text=pages.gallery(specs), content_type="text/html")


async def artworks_api(request: web.Request) -> web.Response:
    return web.json_response([pages.spec_json(spec) for spec in request.app[LIBRARY_KEY].specs()])


async def thumbnail(request: web.Request) -> web.Response:
    artwork_id = request.match_info["artwork_id"]
    cache = request.app[THUMBNAILS_KEY]
    if artwork_id not in cache:
        library = request.app[LIBRARY_KEY]
        try:
            cache[artwork_id] = await asyncio.get_running_loop().run_in_executor(
                None, _make_thumbnail, library, artwork_id
            )
        except ArtBoothError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
    return web.Response(body=cache[artwork_id], content_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


def _make_thumbnail(library: ArtworkLibrary, artwork_id: str) -> bytes:
    image = library.get(artwork_id).image
    scale = THUMBNAIL_LONG_SIDE / max(image.shape[:2])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return encode_image(cv2.resize(image, size, interpolation=cv2.INTER_AREA), ".jpg", jpeg_quality=85)


async def compose_api(request: web.Request) -> web.Response:
    outcome = await _compose_upload(request)
    if not outcome.ok:
        return web.json_response({"error": outcome.error, "code": outcome.error_code.name.lower()}, status=_status(outcome))
    return web.json_response(
        {"report": outcome.report, "image": "data:image/jpeg;base64," + base64.b64encode(outcome.encoded).decode()}
    )


async def compose_page(request: web.Request) -> web.Response:
    outcome = await _compose_upload(request)
    specs = request.app[LIBRARY_KEY].specs()
    if not outcome.ok:
        return web.Response(text=pages.gallery(specs, error=outcome.error), content_type="text/html", status=_status(outcome))
    return web.Response(text=pages.result(outcome.report, outcome.encoded, specs), content_type="text/html")


async def _compose_upload(request: web.Request) -> ComposeOutcome:
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS_KEY].max_upload_bytes
        return ComposeOutcome(None, None, ExitCode.IMAGE_TOO_LARGE, f"the upload is over the limit of {limit:,} bytes")
    photo = form.get("photo")
    artwork = form.get("artwork")
    if not isinstance(photo, web.FileField):
        return ComposeOutcome(None, None, ExitCode.USAGE, "attach the photo as the 'photo' file field")
    if not isinstance(artwork, str) or not artwork:
        return ComposeOutcome(None, None, ExitCode.USAGE, "choose an artwork (the 'artwork' field)")
    photo_bytes = photo.file.read()
    try:
        return await request.app[POOL_KEY].compose(photo_bytes, artwork)
    except PoolBusyError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc), headers={"Retry-After": "5"}) from None


def _status(outcome: ComposeOutcome) -> int:
    return _STATUS_FOR_CODE.get(outcome.error_code, 400)


def serve(settings: Settings) -> None:
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    log.info("serving on http://%s:%d (public URL %s)", settings.host, settings.port, settings.resolved_public_url)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)

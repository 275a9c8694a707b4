"""The aiohttp application: the artwork gallery, composing an uploaded photo, the visitor's
download pages, and staff sign-in (web/staff.py). Storage (database migrated, artworks imported) and the compose workers are
started with the app and stopped with it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path

import cv2
from aiohttp import web

from kiosk.artworks import ArtworkLibrary
from kiosk.catalogue import ArtworkCatalogue
from kiosk.errors import ArtBoothError, ExitCode, exit_code_for
from kiosk.models import ModelStore
from kiosk.settings import Settings
from kiosk.storage import SavedDownload, Storage
from kiosk.workers import ComposeOutcome, ComposePool, PoolBusyError
from pipeline.codec import decode_image, encode_image
from web import kiosk, pages, staff, visitor
from web.keys import CATALOGUE_KEY, POOL_KEY, SETTINGS_KEY, STORAGE_KEY, THUMBNAILS_KEY

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
THUMBNAIL_LONG_SIDE = 480

# Which HTTP status each kind of refused input gets.
_STATUS_FOR_CODE = {
    ExitCode.EMPTY_FILE: 400,
    ExitCode.NOT_AN_IMAGE: 415,
    ExitCode.TRUNCATED_IMAGE: 400,
    ExitCode.IMAGE_TOO_LARGE: 413,
    ExitCode.NO_PERSON: 422,
    ExitCode.ARTWORK_NOT_FOUND: 404,
    ExitCode.STORAGE_FAILED: 503,
}


def create_app(settings: Settings) -> web.Application:
    # Multipart overhead on top of the largest photo we accept.
    app = web.Application(client_max_size=settings.max_upload_bytes + 64 * 1024, middlewares=[staff.middleware])
    app[SETTINGS_KEY] = settings
    app[THUMBNAILS_KEY] = {}
    app.router.add_get("/", gallery_page)
    app.router.add_post("/compose", compose_page)
    app.router.add_get("/api/artworks", artworks_api)
    app.router.add_post("/api/compose", compose_api)
    app.router.add_get("/artworks/{artwork_id}/thumbnail.jpg", thumbnail)
    app.router.add_static("/static", STATIC_DIR)
    visitor.add_routes(app.router)
    kiosk.add_routes(app.router)
    staff.add_routes(app.router)
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_compose_pool)
    app.cleanup_ctx.append(kiosk.live_preview)
    app.cleanup_ctx.append(staff.staff_auth)  # last: its setup link is then the last line of the start
    return app


async def _storage(app: web.Application):
    settings = app[SETTINGS_KEY]
    storage = await Storage.open(settings)
    try:
        catalogue = ArtworkCatalogue(storage, ArtworkLibrary(settings))
        report = await catalogue.sync()
        log.info(
            "artworks imported: %d added, %d updated, %d no longer available",
            report.added,
            report.updated,
            report.made_unavailable,
        )
        storage.warn_if_unreachable_by_phones()
        app[STORAGE_KEY] = storage
        app[CATALOGUE_KEY] = catalogue
        background = [
            asyncio.create_task(storage.retain_periodically(), name="retention"),
            asyncio.create_task(storage.flush_download_counts_periodically(), name="download counts"),
        ]
        yield
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    finally:
        await storage.close()


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
    specs = await _offered_specs(request.app)
    return web.Response(text=pages.gallery(specs), content_type="text/html")


async def artworks_api(request: web.Request) -> web.Response:
    return web.json_response([pages.spec_json(spec) for spec in await _offered_specs(request.app)])


async def _offered_specs(app: web.Application):
    return [record.spec for record in await app[CATALOGUE_KEY].records()]


async def thumbnail(request: web.Request) -> web.Response:
    catalogue = request.app[CATALOGUE_KEY]
    try:
        record = await catalogue.offered(request.match_info["artwork_id"])
    except ArtBoothError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    cache = request.app[THUMBNAILS_KEY]
    # Keyed by the row's update time: a changed image or re-import gets a new thumbnail.
    cache_key = (record.spec.id, record.updated_at)
    if cache_key not in cache:
        settings = request.app[SETTINGS_KEY]
        # Finding (or painting) the image and shrinking it: one trip off the event loop.
        cache[cache_key] = await asyncio.to_thread(lambda: _make_thumbnail(catalogue.image_path(record), settings))
    return web.Response(body=cache[cache_key], content_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


def _make_thumbnail(path: Path, settings: Settings) -> bytes:
    image = decode_image(path.read_bytes(), max_pixels=settings.max_image_pixels)
    scale = THUMBNAIL_LONG_SIDE / max(image.shape[:2])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return encode_image(cv2.resize(image, size, interpolation=cv2.INTER_AREA), ".jpg", jpeg_quality=85)


async def compose_api(request: web.Request) -> web.Response:
    outcome, saved = await _compose_upload(request)
    if not outcome.ok:
        return web.json_response({"error": outcome.error, "code": outcome.error_code.name.lower()}, status=_status(outcome))
    return web.json_response(
        {
            "report": outcome.report,
            "image": "data:image/jpeg;base64," + base64.b64encode(outcome.encoded).decode(),
            "photo_id": saved.photo_id,
            "download_url": saved.url,
            "expires_at": saved.expires_at.isoformat(),
        }
    )


async def compose_page(request: web.Request) -> web.Response:
    outcome, saved = await _compose_upload(request)
    specs = await _offered_specs(request.app)
    if not outcome.ok:
        return web.Response(text=pages.gallery(specs, error=outcome.error), content_type="text/html", status=_status(outcome))
    return web.Response(text=pages.result(outcome.report, outcome.encoded, specs, saved), content_type="text/html")


async def _compose_upload(request: web.Request) -> tuple[ComposeOutcome, SavedDownload | None]:
    """Compose the uploaded photo and store the result; the outcome carries any refusal."""
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS_KEY].max_upload_bytes
        return _refused(ExitCode.IMAGE_TOO_LARGE, f"the upload is over the limit of {limit:,} bytes"), None
    photo = form.get("photo")
    artwork_id = form.get("artwork")
    if not isinstance(photo, web.FileField):
        return _refused(ExitCode.USAGE, "attach the photo as the 'photo' file field"), None
    if not isinstance(artwork_id, str) or not artwork_id:
        return _refused(ExitCode.USAGE, "choose an artwork (the 'artwork' field)"), None
    photo_bytes = photo.file.read()
    try:
        source = await request.app[CATALOGUE_KEY].source(artwork_id)
        outcome = await request.app[POOL_KEY].compose(photo_bytes, source)
        if not outcome.ok:
            return outcome, None
        saved = await request.app[STORAGE_KEY].save(
            outcome.encoded, outcome.report, artwork_id=source.spec.id, raw_photo=photo_bytes
        )
    except PoolBusyError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc), headers={"Retry-After": "5"}) from None
    except ArtBoothError as exc:
        return _refused(exit_code_for(exc), str(exc)), None
    return outcome, saved


def _refused(code: ExitCode, message: str) -> ComposeOutcome:
    return ComposeOutcome(None, None, code, message)


def _status(outcome: ComposeOutcome) -> int:
    return _STATUS_FOR_CODE.get(outcome.error_code, 400)


def serve(settings: Settings) -> None:
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    log.info("serving on http://%s:%d (public URL %s)", settings.host, settings.port, settings.resolved_public_url)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)

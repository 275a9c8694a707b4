"""The aiohttp application: the artwork gallery, composing an uploaded photo, the visitor's
download pages, staff sign-in (web/staff.py) and the REST API (web/api/). Storage (database
migrated, artworks imported) and the compose workers are started with the app and stopped with it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import signal
from pathlib import Path

from aiohttp import web

from db.images import THUMBNAIL_LONG_SIDE, thumbnail_jpeg
from db.notify import NotificationListener
from kiosk import tls
from kiosk.artworks import ArtworkLibrary
from kiosk.capture_queue import QueuedComposer
from kiosk.catalogue import ArtworkCatalogue
from kiosk.errors import ArtBoothError
from kiosk.models import ModelStore
from kiosk.museum import adopt_logo_file
from kiosk.settings import Settings
from kiosk.storage import Storage
from kiosk.workers import ComposePool
from pipeline.codec import decode_image
from web import (
    availability,
    dashboard,
    dashboard_artworks,
    dashboard_kiosks,
    dashboard_museum,
    dashboard_privacy,
    dashboard_queue,
    health,
    kiosk,
    limits,
    phone_http,
    proxies,
    staff,
    tls_page,
    tokens_page,
    visitor,
)
from web.api import problems
from web.api import routes as api_routes
from web.artwork_json import spec_json
from web.i18n import SHIPPED_LOCALES_DIR, Catalogues
from web.keys import BOOTHS_KEY, CATALOGUE_KEY, PAGES_KEY, POOL_KEY, SETTINGS_KEY, STORAGE_KEY, THUMBNAILS_KEY
from web.templating import Pages
from web.uploads import compose_upload, status_of

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.max_request_bytes,
        # Problems outermost: every error under /api/v1, the staff middleware's refusals too, leaves as one.
        # The limits next: a request over them is refused before anything else reads or does anything.
        # The client's address first (behind a trusted proxy, the one it forwards): the limits count it.
        middlewares=[
            problems.middleware, proxies.middleware(settings), limits.middleware, phone_http.middleware,
            availability.middleware, staff.middleware,
        ],
    )
    app[SETTINGS_KEY] = settings
    app[PAGES_KEY] = Pages(Catalogues([SHIPPED_LOCALES_DIR, settings.resolved_locales_dir]))
    limits.setup(app, settings)
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
    api_routes.add_routes(app.router)
    tokens_page.add_routes(app.router)
    tls_page.add_routes(app.router)
    dashboard.add_routes(app.router)
    dashboard_artworks.setup(app)
    dashboard_kiosks.add_routes(app.router)
    dashboard_museum.add_routes(app.router)
    dashboard_privacy.add_routes(app.router)
    dashboard_queue.add_routes(app.router)
    health.add_routes(app.router)
    app.cleanup_ctx.append(dashboard.recent_problems)  # first: the start's own warnings are kept too
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_compose_pool)
    app.cleanup_ctx.append(kiosk.live_preview)
    app.cleanup_ctx.append(_shared_state)
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
        await adopt_logo_file(storage)
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
    storage = app[STORAGE_KEY]
    settings = storage.settings  # with staff's dashboard settings (harmonization defaults)
    if settings.serve_role == "web":  # on PostgreSQL: the settings refuse it otherwise
        pool = QueuedComposer(settings, storage)
    else:
        # Fail at start, with the fix named, rather than on the first visitor's photo.
        await asyncio.to_thread(ModelStore(settings).check_capture_models)
        pool = ComposePool(settings, storage)
    app[POOL_KEY] = pool
    await dashboard_museum.apply_identity(app)  # the museum's name and logo: on photos and pages
    try:
        await pool.warm_up()
        if settings.serve_role == "web":
            log.info("compositions are queued for artbooth worker processes (serve role web)")
        else:
            log.info("compose pool ready with %d worker(s)", settings.compose_workers)
        yield
    finally:
        await pool.close()


async def _shared_state(app: web.Application):
    """What serve nodes sharing one database share beyond it: every booth's presence, and on
    PostgreSQL every node's settings changes (db/notify.py), taken up as a change made here is."""
    storage, booths = app[STORAGE_KEY], app[BOOTHS_KEY]
    node = storage.settings.resolved_node_name
    booths.share_through(storage.sessions, node)
    background = [asyncio.create_task(booths.share_periodically(), name="booth presence")]
    if (channel := storage.settings_channel) is not None:
        listener = NotificationListener(
            storage.engine.url,
            channel,
            lambda _: _take_up_stored_settings(app),
            name=f"settings {node}",
            max_retry_s=storage.settings.settings_listen_retry_max_seconds,
        )
        background.append(asyncio.create_task(listener.run(), name="settings listener"))
    yield
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)


async def _take_up_stored_settings(app: web.Application) -> None:
    """Put the stored dashboard settings in effect here after any node changed them: what the
    dashboard's pages do after a change made on this node."""
    await app[STORAGE_KEY].reload_settings()
    # Side by side: the museum's name and colours (what visitors see at once) need not wait for the
    # harmonizer's weights to be read in a thread, which a busy machine can hold up for a second.
    await asyncio.gather(dashboard.apply_settings(app), dashboard_museum.apply_identity(app))


async def gallery_page(request: web.Request) -> web.Response:
    return await _public_page(request, "gallery.html", specs=await _offered_specs(request.app), error=None)


async def _public_page(request: web.Request, template: str, *, status: int = 200, **context: object) -> web.Response:
    """The museum's page at / (with the public upload form where the setting allows it), in the visitor's language."""
    settings, templates = request.app[SETTINGS_KEY], request.app[PAGES_KEY]
    language = templates.language_of(request, settings.default_language)
    html = templates.render(f"visitor/{template}", language, public_upload=settings.public_upload, **context)
    return web.Response(text=html, content_type="text/html", status=status)


def _require_public_upload(request: web.Request) -> None:
    # Privacy by default: anyone's upload would be stored with a link, so the form exists only when staff turn it on.
    if not request.app[SETTINGS_KEY].public_upload:
        raise web.HTTPNotFound(text="The public upload form is turned off (setting public_upload).")


async def artworks_api(request: web.Request) -> web.Response:
    return web.json_response([spec_json(spec) for spec in await _offered_specs(request.app)])


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
        image = await catalogue.image_file(record)
        cache[cache_key] = await asyncio.to_thread(_make_thumbnail, image, settings)
    return web.Response(body=cache[cache_key], content_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


def _make_thumbnail(path: Path, settings: Settings) -> bytes:
    image = decode_image(path.read_bytes(), max_pixels=settings.max_image_pixels)
    return thumbnail_jpeg(image, long_side=THUMBNAIL_LONG_SIDE)


async def compose_api(request: web.Request) -> web.Response:
    _require_public_upload(request)
    outcome, saved = await compose_upload(request)
    if not outcome.ok:
        return web.json_response({"error": outcome.error, "code": outcome.error_code.name.lower()}, status=status_of(outcome))
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
    _require_public_upload(request)
    outcome, saved = await compose_upload(request)
    specs = await _offered_specs(request.app)
    if not outcome.ok:
        return await _public_page(request, "gallery.html", status=status_of(outcome), specs=specs, error=outcome.error)
    report = outcome.report
    return await _public_page(
        request,
        "result.html",
        specs=specs,
        spec=next((spec for spec in specs if spec.id == report["artwork"]), None),
        artwork_id=str(report["artwork"]),
        selected=str(report["artwork"]),
        image_url="data:image/jpeg;base64," + base64.b64encode(outcome.encoded).decode("ascii"),
        saved=saved,
        people=int(report["people"]),
        framing=str(report["framing"]),
        timings=report["timings_ms"],
    )


def serve(settings: Settings) -> None:
    """Run the service until SIGINT or SIGTERM."""
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    limits.FreedMemory().fix_mmap_threshold()
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    runner = limits.GuardedAppRunner(create_app(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await runner.setup()  # the app's start: database opened and checked, artworks imported, workers warm
        # After the start: the certificate names the public URL in effect, staff's dashboard value included.
        served = runner.app[STORAGE_KEY].settings
        ssl_context = await asyncio.to_thread(tls.server_context, served)
        await web.TCPSite(runner, settings.host, settings.port, ssl_context=ssl_context).start()
        phones = phone_http.phone_site(runner, served) if ssl_context else None
        if phones is not None:
            await phones.start()
        _warn_if_links_miss_the_scheme(served)
        # Only now: whoever waits for this line (a supervisor, a booth's start script) may send requests.
        log.info(
            "serving on %s://%s:%d%s (public URL %s)",
            "https" if ssl_context else "http",
            settings.host,
            settings.port,
            f", and for phones' download links on http port {served.resolved_phone_http_port}" if phones else "",
            served.resolved_public_url,
        )
        await stop.wait()
    finally:
        await runner.cleanup()


def _warn_if_links_miss_the_scheme(settings: Settings) -> None:
    """An http:// public URL set by hand on a server that answers only HTTPS gives phones dead links.
    (The other way round is a proxy in front that terminates HTTPS: tls = "off".)"""
    if settings.serves_tls and not settings.serves_phone_http and settings.resolved_public_url.startswith("http://"):
        log.warning(
            "public_url %s is http:// but this server answers only HTTPS: download links and QR codes will not "
            "open; make it https://",
            settings.resolved_public_url,
        )

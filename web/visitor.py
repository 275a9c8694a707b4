"""The visitor's pages, reached from the QR code: see the photo, download it, delete it.

The token in the URL is the only credential, so everything here is private: never cached,
never sent on as a referrer, never indexed. Links that existed but ended (expired, revoked,
photo deleted) answer 410 with a page that says which; anything else answers 404.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone

from aiohttp import web

from db import service
from db.service import DeleteResult, LinkLookup, LinkState
from db.store import StoredFileMissingError
from kiosk.qr import qr_png, qr_svg
from web import availability
from web.keys import PAGES_KEY, SETTINGS_KEY, STORAGE_KEY

VISITOR_ACTOR = "visitor"

PRIVATE_HEADERS = {
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
}


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/p/{token}", photo_page)
    router.add_get("/p/{token}/photo.jpg", photo_image)
    router.add_get("/p/{token}/download", download)
    router.add_get("/p/{token}/qr.png", qr_code_png)
    router.add_get("/p/{token}/qr.svg", qr_code_svg)
    router.add_get("/p/{token}/delete", confirm_delete_page)
    router.add_post("/p/{token}/delete", delete)


async def _look_up(request: web.Request) -> LinkLookup:
    storage = request.app[STORAGE_KEY]
    return await service.look_up_link(storage.sessions, request.match_info["token"], now=datetime.now(timezone.utc))


def _private(response: web.StreamResponse) -> web.StreamResponse:
    response.headers.update(PRIVATE_HEADERS)
    return response


def _html(
    request: web.Request, template: str, lookup: LinkLookup | None = None, *, status: int = 200, **context: object
) -> web.StreamResponse:
    """A visitor page in the language asked for (``?lang=``), else the one the visitor used at the
    booth (the link's), else the phone's (web/templating.py: cookie, Accept-Language)."""
    pages = request.app[PAGES_KEY]
    link_language = lookup.link.language if lookup is not None and lookup.link is not None else None
    language = (
        pages.catalogues.known(request.query.get("lang"))
        or pages.catalogues.known(link_language)
        or pages.language_of(request, request.app[SETTINGS_KEY].default_language)
    )
    html = pages.render(f"visitor/{template}", language, **context)
    return _private(web.Response(text=html, content_type="text/html", status=status))


def _ended(request: web.Request, lookup: LinkLookup) -> web.StreamResponse:
    if lookup.state is LinkState.UNKNOWN:
        return _html(request, "not_found.html", status=404)
    return _html(request, "gone.html", lookup, status=410, state=lookup.state.value)


async def photo_page(request: web.Request) -> web.StreamResponse:
    lookup = await _look_up(request)
    if lookup.state is not LinkState.VALID:
        return _ended(request, lookup)
    return _html(
        request, "photo.html", lookup, token=request.match_info["token"], spec=lookup.artwork.spec, expires_at=lookup.link.expires_at
    )


async def photo_image(request: web.Request) -> web.StreamResponse:
    lookup = await _look_up(request)
    if lookup.state is not LinkState.VALID:
        return _ended(request, lookup)
    return await _photo_file(request, lookup, headers={})


async def download(request: web.Request) -> web.StreamResponse:
    lookup = await _look_up(request)
    if lookup.state is not LinkState.VALID:
        return _ended(request, lookup)
    response = await _photo_file(
        request, lookup, headers={"Content-Disposition": f'attachment; filename="{download_name(lookup)}"'}
    )
    request.app[STORAGE_KEY].count_download(lookup.link.id)
    return response


def download_name(lookup: LinkLookup) -> str:
    """``artbooth-<artwork>-<date>-<time>.jpg``: sorts by time in a phone's files, says what it is."""
    artwork = re.sub(r"[^A-Za-z0-9]+", "-", lookup.artwork.spec.id).strip("-").lower() or "photo"
    return f"artbooth-{artwork[:60]}-{lookup.photo.created_at:%Y%m%d-%H%M%S}.jpg"


async def _photo_file(request: web.Request, lookup: LinkLookup, *, headers: dict[str, str]) -> web.StreamResponse:
    store = request.app[STORAGE_KEY].store
    key = lookup.photo.result_key
    path = store.local_path(key)
    if path is not None:
        # sendfile from the kernel's page cache: downloads cost the event loop almost nothing.
        response = web.FileResponse(path, headers={"Content-Type": "image/jpeg", **headers})
    else:
        try:
            response = web.Response(body=await store.get(key), content_type="image/jpeg", headers=headers)
        except StoredFileMissingError:
            return _ended(request, LinkLookup(LinkState.DELETED, lookup.link, None, None))
    return _private(response)


async def qr_code_png(request: web.Request) -> web.StreamResponse:
    return await _qr_code(request, qr_png, "image/png")


async def qr_code_svg(request: web.Request) -> web.StreamResponse:
    return await _qr_code(request, qr_svg, "image/svg+xml")


async def _qr_code(request: web.Request, render, content_type: str) -> web.StreamResponse:
    lookup = await _look_up(request)
    if lookup.state is not LinkState.VALID:
        return _ended(request, lookup)
    url = request.app[STORAGE_KEY].download_url(request.match_info["token"])
    # Encoding a QR code is a few milliseconds of CPU: not on the event loop.
    return _private(web.Response(body=await asyncio.to_thread(render, url), content_type=content_type))


async def confirm_delete_page(request: web.Request) -> web.StreamResponse:
    lookup = await _look_up(request)
    if lookup.state is not LinkState.VALID:
        return _ended(request, lookup)
    return _html(request, "confirm_delete.html", lookup, token=request.match_info["token"], spec=lookup.artwork.spec)


async def delete(request: web.Request) -> web.StreamResponse:
    lookup = await _look_up(request)
    if lookup.state is not LinkState.VALID:
        return _ended(request, lookup)
    storage = request.app[STORAGE_KEY]
    result = await service.delete_photo(
        storage.sessions, storage.store, lookup.photo.id, actor=VISITOR_ACTOR, now=datetime.now(timezone.utc)
    )
    if result is DeleteResult.GONE:  # another tap, or staff, got there first
        return _html(request, "gone.html", lookup, status=410, state=LinkState.DELETED.value)
    if result is DeleteResult.PENDING:  # hidden already; the files go at the next retention run
        return _private(availability.delete_pending_html(request))
    return _html(request, "deleted.html", lookup)

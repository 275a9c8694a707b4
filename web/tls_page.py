"""HTTPS for booths, for staff (kiosk/tls.py): /staff/tls shows how this server serves HTTPS and, with
ArtBooth's own certificate authority, its fingerprint and how to install it on booth PCs and phones;
/tls/ca.crt hands out that CA's certificate to anyone (a certificate is public; no key is ever served).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from kiosk import tls
from kiosk.settings import Settings
from web import staff_pages
from web.keys import SETTINGS_KEY, STORAGE_KEY
from web.staff import require_login
from web.staff_pages import Viewer

SECTION = "/staff/tls"
CA_DOWNLOAD = "/tls/ca.crt"
# The name the downloaded file gets: what the install instructions on the page call it.
CA_FILE_NAME = "artbooth-ca.crt"
# What Windows, macOS, Android and iOS open as a certificate to install.
CA_CONTENT_TYPE = "application/x-x509-ca-cert"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(SECTION, tls_page)
    router.add_get(CA_DOWNLOAD, ca_certificate)


def _uses_local_ca(settings: Settings) -> bool:
    return settings.serves_tls and settings.tls_certificate is None


async def tls_page(request: web.Request) -> web.Response:
    identity = require_login(request)
    settings = request.app[SETTINGS_KEY]  # the tls settings need a restart: the ones served with
    ca, names, problem = None, [], None
    if _uses_local_ca(settings):
        try:
            ca, names = await asyncio.to_thread(_local_ca_and_names, settings)
        except tls.TLSError as exc:
            problem = str(exc)
    return staff_pages.html(
        request,
        "staff/tls.html",
        viewer=Viewer(identity.username, identity.role, identity.csrf_token),
        section=SECTION,
        mode="local" if _uses_local_ca(settings) else "given" if settings.serves_tls else "plain",
        ca=ca,
        names=names,
        problem=problem,
        certificate=str(settings.tls_certificate or ""),
        public_url=request.app[STORAGE_KEY].settings.resolved_public_url,
        phone_port=settings.resolved_phone_http_port,
        download=CA_DOWNLOAD,
        file_name=CA_FILE_NAME,
    )


def _local_ca_and_names(settings: Settings) -> tuple[tls.LocalCA | None, list[str]]:
    """The local CA (None until `artbooth serve` or `artbooth tls ca` made it) and the names its
    current server certificate carries."""
    return tls.local_ca(settings), tls.served_names(settings)


async def ca_certificate(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    ca = await asyncio.to_thread(tls.local_ca, settings) if _uses_local_ca(settings) else None
    if ca is None:
        raise web.HTTPNotFound(text="This server does not use ArtBooth's own certificate authority.")
    return web.Response(
        body=ca.pem,
        content_type=CA_CONTENT_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{CA_FILE_NAME}"', "Cache-Control": "no-cache"},
    )

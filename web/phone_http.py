"""Plain HTTP for visitors' phones beside HTTPS for booths (settings.phone_http_port).

A booth's browser needs HTTPS for its camera and trusts ArtBooth's own certificate authority once
staff install it; a visitor's phone never will, and a certificate warning on the QR code's link
would lose the photo. So with the generated certificate the service answers on a second, plain
port too, where only what a phone opens from the QR code is served: the download pages (/p/...),
their assets, the museum's logo and style, and the CA certificate (for installing it). Anything
else asked there (the booth, staff sign-in, the API) is redirected to HTTPS: passwords and booth
credentials never travel in clear.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from kiosk.settings import Settings
from web.keys import SETTINGS_KEY

PHONE_PATHS = ("/p/", "/static/", "/museum/", "/tls/ca.crt")


def listens_for_phones(request: web.Request, settings: Settings) -> bool:
    """Whether ``request`` came in on the plain phone port (not the HTTPS one, nor any other listener)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return (
        not request.secure
        and settings.serves_phone_http
        and sockname is not None
        and sockname[1] == settings.resolved_phone_http_port
    )


@web.middleware
async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    settings = request.app[SETTINGS_KEY]
    if listens_for_phones(request, settings) and not request.path.startswith(PHONE_PATHS):
        # 308: the method and body stay, so a form posted here is posted to HTTPS (never read in clear).
        return web.Response(status=308, headers={"Location": str(request.url.with_scheme("https").with_port(settings.port))})
    return await handler(request)


def phone_site(runner: web.BaseRunner, settings: Settings) -> web.TCPSite | None:
    """The plain listener for phones, when ``settings`` serve HTTPS with the generated certificate."""
    if not settings.serves_phone_http:
        return None
    return web.TCPSite(runner, settings.host, settings.resolved_phone_http_port)

"""The client's own address behind a reverse proxy (setting trusted_proxies).

Behind nginx every request reaches the node from the proxy's address, so the per-address limits
(web/limits.py) and the sign-in lockouts (web/staff.py) would count every visitor and every staff
member as one. A request whose connection comes from a trusted proxy is taken to come from the
address X-Forwarded-For names last outside the trusted proxies (aiohttp-remotes' XForwardedFiltered,
which also takes the scheme from X-Forwarded-Proto); a request from anywhere else is its
connection's peer, whatever its headers claim, so nobody who reaches a node directly can pose as
another address. A malformed X-Forwarded-For from a trusted proxy is a 400.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp_remotes import XForwardedFiltered

from kiosk.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(settings: Settings):
    """The middleware for ``settings``' trusted proxies (a pass-through when there are none)."""
    networks = settings.trusted_proxy_networks
    forwarded = XForwardedFiltered({str(network) for network in networks}) if networks else None

    @web.middleware
    async def client_address(request: web.Request, handler: Handler) -> web.StreamResponse:
        if forwarded is None or not _from_one_of(request, networks):
            return await handler(request)
        return await forwarded.middleware(request, handler)

    return client_address


def _from_one_of(request: web.Request, networks) -> bool:
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    if not peer:
        return False
    address = ipaddress.ip_address(peer[0])
    return any(address in network for network in networks)

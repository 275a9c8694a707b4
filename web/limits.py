"""What clients can make the service hold: memory for request bodies, requests and connections.

- **Bodies in flight.** One server-wide budget of request-body bytes (``max_inflight_upload_bytes``).
  A request declaring a Content-Length the budget cannot take gets 503 with Retry-After before its
  body is read; a body without one (chunked) is charged as it arrives, and its connection is
  closed when the budget runs out. The bytes stay charged until the request is answered: an
  admitted photo is held, once, while the workers compose it.
- **Per client address, on the public endpoints** (the gallery's and the API's compose, visitors'
  download pages, booths): requests per minute and requests at once, 429 with Retry-After over
  either. The rate uses the ``limits`` library's moving window, kept in memory (its asyncio
  flavour, made for an event loop).
- **Slow clients, per connection** (GuardedConnection): a deadline for a request's headers and
  one for its body; past either the connection is closed. One address holds at most
  ``max_connections_per_address`` connections; the next is answered 429 and closed.

aiohttp has no deadline for headers of its own, so the connection-level limits live in a subclass
of its protocol; GuardedAppRunner serves an app with it, for ``artbooth serve`` and the tests alike.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.streams import StreamReader
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from kiosk.settings import Settings
from web.keys import SETTINGS_KEY
from web.uploads import BUSY_RETRY_AFTER_S

log = logging.getLogger(__name__)

# glibc's mallopt parameter (<malloc.h>), and the size from which blocks get a mapping of their own.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 1024 * 1024

# Paths whose requests count against the per-address limits: what anyone on the network can call.
PUBLIC_PREFIXES = ("/compose", "/api/compose", "/p/", "/kiosk/", "/api/kiosks/")
# Why GuardedConnection closed a connection.
HEADERS_TOO_SLOW = "no complete request headers in time"
BODY_TOO_SLOW = "the request's body did not arrive in time"
OVER_BUDGET = "the upload outgrew the room left for it"

LIMITS_KEY = web.AppKey("request_limits", "RequestLimits")


class UploadBudget:
    """Request-body bytes in flight across the service, against one limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def charge(self) -> BodyCharge:
        return BodyCharge(self)


class BodyCharge:
    """One request's share of the budget: grown to the bytes it declares or has sent, given back
    when the request is answered."""

    def __init__(self, budget: UploadBudget) -> None:
        self._budget = budget
        self.bytes = 0

    def cover(self, total: int) -> bool:
        """Grow this request's share to ``total`` bytes; False (nothing changed) when the budget lacks room."""
        extra = total - self.bytes
        if extra <= 0:
            return True
        if self._budget.in_flight + extra > self._budget.limit:
            return False
        self._budget.in_flight += extra
        self.bytes = total
        return True

    def release(self) -> None:
        self._budget.in_flight -= self.bytes
        self.bytes = 0


class RequestLimits:
    """The app's per-request limits (the budget, the per-address rate and concurrency)."""

    def __init__(self, settings: Settings) -> None:
        self.budget = UploadBudget(settings.max_inflight_upload_bytes)
        self._rate = RateLimitItemPerMinute(settings.public_requests_per_minute)
        self._rate_limiter = MovingWindowRateLimiter(MemoryStorage())
        self._max_concurrent = settings.public_concurrent_requests
        self._concurrent: Counter[str] = Counter()
        self.freed_memory = FreedMemory()

    async def refuse_public(self, address: str) -> web.Response | None:
        """The 429 for a public request from ``address`` over its rate or concurrency; None: it may go on."""
        if self._concurrent[address] >= self._max_concurrent:
            return _too_many(f"more than {self._max_concurrent} requests at once from your address", BUSY_RETRY_AFTER_S)
        if not await self._rate_limiter.hit(self._rate, address):
            reset_at = (await self._rate_limiter.get_window_stats(self._rate, address)).reset_time
            wait = max(1, math.ceil(reset_at - time.time()))
            return _too_many(f"more than {self._rate.amount} requests a minute from your address", wait)
        return None

    def started(self, address: str) -> None:
        self._concurrent[address] += 1

    def finished(self, address: str) -> None:
        self._concurrent[address] -= 1
        if self._concurrent[address] <= 0:
            del self._concurrent[address]


def _too_many(reason: str, retry_after: int) -> web.Response:
    return web.Response(
        status=429, text=f"Too many requests: {reason}. Try again in {retry_after} s.", headers={"Retry-After": str(retry_after)}
    )


def busy_response(reason: str) -> web.HTTPServiceUnavailable:
    """503 for a body the service has no room for now; the connection closes, so its unread rest is not waited for."""
    return web.HTTPServiceUnavailable(
        text=f"The service is busy receiving other uploads ({reason}); try again in {BUSY_RETRY_AFTER_S} seconds.",
        headers={"Retry-After": str(BUSY_RETRY_AFTER_S), "Connection": "close"},
    )


def setup(app: web.Application, settings: Settings) -> None:
    app[LIMITS_KEY] = RequestLimits(settings)


@web.middleware
async def middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    limits = request.app[LIMITS_KEY]
    address = request.remote or "unknown"
    public = request.path.startswith(PUBLIC_PREFIXES)
    if public:
        refusal = await limits.refuse_public(address)
        if refusal is not None:
            return refusal
        limits.started(address)
    charge = limits.budget.charge()
    try:
        if request.body_exists:
            declared = request.content_length or 0
            if not charge.cover(declared):
                log.info("refused a %d-byte body from %s: the upload budget is spent", declared, address)
                raise busy_response("no room for this upload now")
            if isinstance(request.protocol, GuardedConnection):
                request.protocol.charge_body(request.content, charge)
        try:
            return await handler(request)
        except Exception:
            # Closed here while the handler read the body: whatever it tripped over (a reset, aiohttp's
            # "Connection closed") is that. The client hears nothing more; the access log says why.
            closed_for = request.protocol.closed_for if isinstance(request.protocol, GuardedConnection) else None
            if closed_for is BODY_TOO_SLOW:
                raise web.HTTPRequestTimeout(text=f"Closed: {closed_for}.") from None
            if closed_for is OVER_BUDGET:
                raise busy_response(closed_for) from None
            raise
    finally:
        had_body = charge.bytes > 0
        charge.release()
        if had_body and limits.budget.in_flight == 0:
            limits.freed_memory.trim_soon()
        if public:
            limits.finished(address)


class ConnectionGuard:
    """Connections per client address, and the deadlines, shared by every connection of one server."""

    def __init__(self, settings: Settings) -> None:
        self.header_timeout = settings.request_header_timeout_seconds
        self.body_timeout = settings.request_body_timeout_seconds
        self.max_per_address = settings.max_connections_per_address
        self._open: Counter[str] = Counter()

    def opened(self, address: str) -> bool:
        """Count a new connection from ``address``; False (not counted) when it has too many."""
        if self._open[address] >= self.max_per_address:
            return False
        self._open[address] += 1
        return True

    def closed(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]


_TOO_MANY_CONNECTIONS = (
    b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: %d\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s"
)


class GuardedConnection(web.RequestHandler):
    """aiohttp's connection protocol with deadlines for headers and body and a per-address cap.

    It watches what aiohttp's parser makes of the bytes: a request whose headers are complete has
    been queued (the handler's request count grows); until then the header deadline runs, from
    the connection's start or from the first byte of the next request. A queued request with a
    body starts the body deadline, stopped when the body is complete.

    aiohttp offers no hook for "headers complete", so this reads three attributes of its
    RequestHandler (_request_count, _messages, _upgraded: aiohttp 3.14, the least pyproject.toml allows).
    Should they change, tests/test_limits.py's deadline tests fail rather than the limits going quiet.
    """

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._address: str | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None
        self._body_charge: BodyCharge | None = None
        # Why this connection was closed here (HEADERS_TOO_SLOW, BODY_TOO_SLOW, OVER_BUDGET), if it was.
        self.closed_for: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else "unknown"
        if not self._guard.opened(address):
            log.info("refused a connection from %s: it has %d open", address, self._guard.max_per_address)
            text = b"Too many connections from your address; close some and try again."
            transport.write(_TOO_MANY_CONNECTIONS % (BUSY_RETRY_AFTER_S, len(text), text))
            self.force_close()
            return
        self._address = address
        self._start_deadline(self._guard.header_timeout, HEADERS_TOO_SLOW)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_deadline()
        if self._address is not None:
            self._guard.closed(self._address)
            self._address = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        queued_before = self._request_count
        # Bytes of a body in progress, even its last ones, are not the next request's first byte.
        in_body_before = self._body is not None
        super().data_received(data)
        if self.transport is None:
            return
        if self._request_count != queued_before:
            # Headers complete: the request is queued for its handler.
            self._stop_deadline()
            _, payload = self._messages[-1] if self._messages else (None, None)
            if payload is not None and not payload.is_eof():
                self._body = payload
                self._start_deadline(self._guard.body_timeout, BODY_TOO_SLOW)
                payload.on_eof(self._body_complete)
        elif data and not in_body_before and self._body is None and self._deadline is None and not self._upgraded:
            # The first byte of the next request on a kept-alive connection.
            self._start_deadline(self._guard.header_timeout, HEADERS_TOO_SLOW)
        self._charge_body()

    def charge_body(self, body: StreamReader, charge: BodyCharge) -> None:
        """Charge ``body``'s bytes to ``charge`` as they arrive (its request's middleware asks)."""
        if body is self._body:
            self._body_charge = charge
            self._charge_body()

    def _charge_body(self) -> None:
        body, charge = self._body, self._body_charge
        if body is not None and charge is not None and not charge.cover(body.total_bytes):
            self._close_for(OVER_BUDGET)

    def _body_complete(self) -> None:
        self._body = self._body_charge = None
        self._stop_deadline()

    def _start_deadline(self, seconds: float, reason: str) -> None:
        self._stop_deadline()
        self._deadline = self._loop.call_later(seconds, self._close_for, reason)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _close_for(self, reason: str) -> None:
        self._stop_deadline()
        log.info("closed a connection from %s: %s", self._address, reason)
        self.closed_for = reason
        self.force_close()


class _GuardedServer(web.Server):
    """aiohttp's server, making GuardedConnection protocols."""

    def __init__(self, *args, guard: ConnectionGuard, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard

    def __call__(self) -> GuardedConnection:
        return GuardedConnection(self, self._guard, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose connections are GuardedConnections, under the app's settings (SETTINGS_KEY).
    ``artbooth serve`` and the tests' servers both run the app with it."""

    def __init__(self, app: web.Application, **kwargs) -> None:
        settings = app[SETTINGS_KEY]
        kwargs.setdefault("keepalive_timeout", settings.idle_connection_seconds)
        super().__init__(app, **kwargs)
        self._guard = ConnectionGuard(settings)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the app: storage, workers, and the rest
        return _GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            loop=asyncio.get_running_loop(),
            guard=self._guard,
            **self._kwargs,
        )


class FreedMemory:
    """Hands memory freed by uploads back to the system, where the C allocator is glibc's.

    glibc raises its mmap threshold to the size of the largest block freed (up to 32 MiB): after
    the first photo, photo-sized blocks come from the heaps of whichever threads read and pickle
    them, and a flood leaves the process gigabytes larger for good. A fixed threshold (which also
    turns that raising off) keeps each block of 1 MiB or more in a mapping of its own, unmapped
    the moment it is freed. The smaller pieces of a flood (parser buffers, the first MiB of each
    spooled part) still fragment the heaps, keeping tens of megabytes: once the last upload in
    flight is answered, malloc_trim gives their free pages back (a few milliseconds, in a thread).
    Elsewhere than glibc this does nothing.
    """

    def __init__(self) -> None:
        try:
            libc = ctypes.CDLL("libc.so.6")
            self._mallopt, self._malloc_trim = libc.mallopt, libc.malloc_trim
        except (OSError, AttributeError):
            self._mallopt = self._malloc_trim = None
        self._trim: asyncio.Future | None = None

    def fix_mmap_threshold(self) -> None:
        """For the whole process; called once, before the service starts."""
        if self._mallopt is not None and self._mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) != 1:
            log.warning("the C allocator refused a fixed mmap threshold; memory freed after a flood of uploads may stay with the process")

    def trim_soon(self) -> None:
        """Give the heaps' free pages back, off the event loop (one trim at a time)."""
        if self._malloc_trim is None or (self._trim is not None and not self._trim.done()):
            return
        self._trim = asyncio.get_running_loop().run_in_executor(None, self._malloc_trim, 0)

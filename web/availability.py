"""Honest answers while the service cannot do its work right now: 503 with Retry-After, never 500.

Two causes are temporary rather than bugs, and each answer says it will pass:
- the database cannot be used (file unreadable, server down, pool exhausted, a query timing out),
  or the S3 photo store cannot be reached: the ``middleware`` turns the error into 503 for every
  route, in the form the caller reads (HTML for pages, JSON for /api/*, problem+json for /api/v1);
- a photo's files cannot be removed now (a read-only photos folder): the photo is already hidden
  and the next retention run finishes the delete (db.service.DeleteResult.PENDING); the delete
  routes answer with ``DELETE_PENDING`` through ``delete_pending_html`` or a problem.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy import exc as sa_exc

from db.engine import DatabaseUnavailableError
from db.store import PhotoStoreUnavailableError
from web.api.problems import in_api, problem_response
from web.keys import PAGES_KEY, SETTINGS_KEY

log = logging.getLogger(__name__)

# The API's words for the two causes (pages say them in the caller's language: visitor/unavailable.html).
DATABASE_UNAVAILABLE = (
    "ArtBooth cannot reach its database right now. Nothing you did caused this, and nothing was lost; "
    "please try again in a minute. If it lasts, tell the museum's staff."
)
DELETE_PENDING = (
    "We could not remove the files now; it will be finished automatically. "
    "The photo is already hidden and its link no longer works."
)
DATABASE_UNAVAILABLE_CODE = "database_unavailable"
DELETE_PENDING_CODE = "delete_pending"

# The database errors that say "not now" rather than "this request or our code is wrong".
# DatabaseError itself (not its subclasses such as IntegrityError) is SQLite's "file is not a
# database" / "disk image is malformed": the file is unusable, whatever the request.
# The photo store that cannot be reached (an S3 store down, db/s3_store.py) is answered the same way.
_UNAVAILABLE_ERRORS = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    DatabaseUnavailableError,
    PhotoStoreUnavailableError,
)
# Raised by the drivers themselves (a connect timing out or refused) without SQLAlchemy's wrapping.
_DRIVER_ERRORS = (TimeoutError, ConnectionError)
_DRIVER_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3")
# A flood of requests while the database is down must not flood the log as well.
_LOG_EVERY_S = 10.0


def retry_after(request: web.Request) -> dict[str, str]:
    return {"Retry-After": str(request.app[SETTINGS_KEY].unavailable_retry_after_seconds)}


def is_database_unavailable(error: BaseException) -> bool:
    if isinstance(error, _UNAVAILABLE_ERRORS) or type(error) is sa_exc.DatabaseError:
        return True
    if isinstance(error, sa_exc.DBAPIError):
        return error.connection_invalidated
    if isinstance(error, _DRIVER_ERRORS):
        return _raised_in_driver(error)
    return False


def _raised_in_driver(error: BaseException) -> bool:
    traceback = error.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.split(".", 1)[0] in _DRIVER_MODULES:
            return True
        traceback = traceback.tb_next
    return False


def unavailable_html(request: web.Request, reason: str, *, headers: dict[str, str], back: str | None = None) -> web.Response:
    """The 503 page for ``reason`` ("database" or "delete_pending"), in the caller's language."""
    pages = request.app[PAGES_KEY]
    language = pages.language_of(request, request.app[SETTINGS_KEY].default_language)
    return web.Response(
        text=pages.render("visitor/unavailable.html", language, reason=reason, back=back),
        content_type="text/html",
        status=503,
        headers={"Cache-Control": "no-store", **headers},
    )


def delete_pending_html(request: web.Request, *, back: str | None = None) -> web.Response:
    """The 503 page of a delete that retention will finish; ``back`` links to where the user came from."""
    return unavailable_html(request, "delete_pending", headers=retry_after(request), back=back)


def _database_unavailable(request: web.Request) -> web.Response:
    headers = retry_after(request)
    if in_api(request.path):
        return problem_response(request, 503, DATABASE_UNAVAILABLE, code=DATABASE_UNAVAILABLE_CODE, headers=headers)
    if request.path == "/api" or request.path.startswith("/api/"):
        body = json.dumps({"error": DATABASE_UNAVAILABLE, "code": DATABASE_UNAVAILABLE_CODE})
        return web.Response(text=body, status=503, content_type="application/json", headers=headers)
    return unavailable_html(request, "database", headers=headers)


class _LogThrottle:
    def __init__(self) -> None:
        self._next_at = 0.0
        self._suppressed = 0

    def warn(self, request: web.Request, error: BaseException) -> None:
        now = time.monotonic()
        if now < self._next_at:
            self._suppressed += 1
            return
        reason = (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]
        log.warning(
            "database unavailable, answering 503 to %s %s: %s%s",
            request.method,
            request.path,
            reason,
            f" ({self._suppressed} more such answers since the last message)" if self._suppressed else "",
        )
        self._next_at, self._suppressed = now + _LOG_EVERY_S, 0


_throttle = _LogThrottle()


@web.middleware
async def middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Database unavailable → 503 in the caller's language, with Retry-After; everything else passes."""
    try:
        return await handler(request)
    except asyncio.CancelledError:
        raise
    except Exception as error:
        if not is_database_unavailable(error):
            raise
        _throttle.warn(request, error)
        return _database_unavailable(request)

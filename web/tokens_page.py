"""The dashboard's API tokens (administrators only): create one (shown once), list them, revoke one.
The page is web/templates/staff/tokens.html; its forms carry the session's CSRF token.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from aiohttp import web

from db import api_tokens
from db.api_tokens import SCOPES, CreatedToken, InvalidTokenRequestError
from db.models import StaffRole
from web.keys import STORAGE_KEY
from web.staff import API_DOCUMENT, StaffIdentity, require_role
from web import staff_pages
from web.staff_pages import Viewer

SECTION = "/staff/tokens"
MAX_EXPIRY_DAYS = 3650


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(SECTION, tokens_page)
    router.add_post(SECTION, create_token)
    # Ids fit a 64-bit column; a longer number is no token (404), not a database error.
    router.add_post(SECTION + r"/{token_id:\d{1,18}}/revoke", revoke_token)


async def _page(
    request: web.Request,
    identity: StaffIdentity,
    *,
    status: int = 200,
    error: str | None = None,
    created: CreatedToken | None = None,
    name: str = "",
    scopes: set[str] | None = None,
    expiry: str = "",
) -> web.Response:
    now = datetime.now(timezone.utc)
    tokens = await api_tokens.list_tokens(request.app[STORAGE_KEY].sessions)
    return staff_pages.html(
        request,
        "staff/tokens.html",
        viewer=Viewer.of(identity),
        section=SECTION,
        status=status,
        tokens=[(token, token.state(now).value) for token in tokens],
        created=created,
        shown_prefix_length=api_tokens.SHOWN_PREFIX_LENGTH,
        all_scopes=SCOPES,
        max_name_length=api_tokens.MAX_NAME_LENGTH,
        max_expiry_days=MAX_EXPIRY_DAYS,
        api_document=API_DOCUMENT,
        error=error,
        name=name,
        scopes=scopes or set(),
        expiry=expiry,
    )


async def tokens_page(request: web.Request) -> web.StreamResponse:
    return await _page(request, require_role(request, StaffRole.ADMIN))


async def create_token(request: web.Request) -> web.StreamResponse:
    identity = require_role(request, StaffRole.ADMIN)
    form = await request.post()
    name = form.get("name", "")
    scopes = {scope for scope in form.getall("scopes", []) if isinstance(scope, str)}
    expiry = form.get("expires_days", "")
    if not isinstance(name, str) or not isinstance(expiry, str):
        return await _page(request, identity, status=400, error="Fill in the form's fields as text.")
    now = datetime.now(timezone.utc)
    expires_at = None
    if expiry.strip():
        try:
            days = int(expiry)
        except ValueError:
            days = 0
        if not 1 <= days <= MAX_EXPIRY_DAYS:
            return await _page(
                request, identity, status=400, name=name, scopes=scopes, expiry=expiry,
                error=f"The expiry is a number of days from 1 to {MAX_EXPIRY_DAYS}, or empty for none.",
            )
        expires_at = now + timedelta(days=days)
    try:
        created = await api_tokens.create_token(
            request.app[STORAGE_KEY].sessions, name=name, scopes=scopes, expires_at=expires_at, actor=identity.username, now=now
        )
    except InvalidTokenRequestError as exc:
        message = str(exc)
        return await _page(
            request, identity, status=400, name=name, scopes=scopes, expiry=expiry, error=message[0].upper() + message[1:] + "."
        )
    # Answered directly rather than redirected: the token must not travel in a URL, and is shown this once.
    return await _page(request, identity, created=created)


async def revoke_token(request: web.Request) -> web.StreamResponse:
    identity = require_role(request, StaffRole.ADMIN)
    await api_tokens.revoke_token(
        request.app[STORAGE_KEY].sessions, int(request.match_info["token_id"]), actor=identity.username, now=datetime.now(timezone.utc)
    )
    raise web.HTTPSeeOther(SECTION)

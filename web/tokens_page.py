"""The dashboard's API tokens (administrators only): create one (shown once), list them, revoke one.

Every value from data is escaped; the forms carry the session's CSRF token.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html import escape

from aiohttp import web

from db import api_tokens
from db.api_tokens import SCOPES, ApiToken, CreatedToken, InvalidTokenRequestError, TokenState
from db.models import StaffRole
from web.keys import STORAGE_KEY
from web.staff import API_DOCUMENT, StaffIdentity, require_role
from web.staff_pages import CSRF_FIELD, dashboard_page

SECTION = "/staff/tokens"
MAX_EXPIRY_DAYS = 3650


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(SECTION, tokens_page)
    router.add_post(SECTION, create_token)
    # Ids fit a 64-bit column; a longer number is no token (404), not a database error.
    router.add_post(SECTION + r"/{token_id:\d{1,18}}/revoke", revoke_token)


def _when(moment: datetime | None, never: str = "never") -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else never


def _csrf(identity: StaffIdentity) -> str:
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(identity.csrf_token)}">'


def _created(created: CreatedToken) -> str:
    return f"""<section class="panel" role="status">
<h2>Token “{escape(created.token.name)}” created</h2>
<p class="error"><strong>Copy it now: it is not shown again.</strong> ArtBooth keeps only its hash; a lost token
cannot be recovered, only revoked and replaced.</p>
<p><code class="token">{escape(created.secret)}</code></p>
<p class="note">Send it as <code>Authorization: Bearer {escape(created.secret[:api_tokens.SHOWN_PREFIX_LENGTH])}...</code></p>
</section>"""


def _create_form(identity: StaffIdentity, *, name: str, scopes: set[str], expiry: str) -> str:
    boxes = "\n".join(
        f'<label><span><input type="checkbox" name="scopes" value="{escape(scope)}"'
        f'{" checked" if scope in scopes else ""}> <code>{escape(scope)}</code> — {escape(meaning)}</span></label>'
        for scope, meaning in SCOPES.items()
    )
    return f"""<form class="panel" method="post" action="{SECTION}">
  {_csrf(identity)}
  <h2>New token</h2>
  <label>Name <input name="name" value="{escape(name)}" maxlength="{api_tokens.MAX_NAME_LENGTH}" required
    placeholder="e.g. the museum website"></label>
  <fieldset><legend>Scopes</legend>
{boxes}
  </fieldset>
  <label>Expires after (days; empty: never) <input name="expires_days" type="number" min="1" max="{MAX_EXPIRY_DAYS}" value="{escape(expiry)}"></label>
  <button type="submit">Create token</button>
</form>"""


def _row(identity: StaffIdentity, token: ApiToken, now: datetime) -> str:
    state = token.state(now)
    revoke = (
        f'<form method="post" action="{SECTION}/{token.id}/revoke">{_csrf(identity)}'
        f'<button type="submit" class="danger">Revoke</button></form>'
        if state is not TokenState.REVOKED
        else ""
    )
    return f"""<tr>
<td>{escape(token.name)}</td><td><code>{escape(token.prefix)}…</code></td>
<td>{"<br>".join(f"<code>{escape(scope)}</code>" for scope in token.scopes)}</td>
<td>{escape(_when(token.created_at))}<br><span class="note">by {escape(token.created_by)}</span></td>
<td>{escape(_when(token.last_used_at))}</td><td>{escape(_when(token.expires_at))}</td>
<td class="state">{escape(state.value)}</td><td>{revoke}</td>
</tr>"""


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
    rows = "\n".join(_row(identity, token, now) for token in tokens)
    listing = (
        f"""<h2>Tokens</h2>
<table class="tokens">
<thead><tr><th>Name</th><th>Prefix</th><th>Scopes</th><th>Created</th><th>Last used</th><th>Expires</th><th>State</th><th></th></tr></thead>
<tbody>
{rows}
</tbody></table>"""
        if tokens
        else '<p class="note">No API tokens yet.</p>'
    )
    body = f"""<h1>API tokens</h1>
<p>Programs use the REST API with a token: <code>Authorization: Bearer abt_…</code>. It is described at
<a href="{API_DOCUMENT}">{API_DOCUMENT}</a>. Give each integration its own token with only the scopes it needs.</p>
{f'<p class="error" role="alert">{escape(error)}</p>' if error else ""}
{_created(created) if created is not None else ""}
{listing}
{_create_form(identity, name=name, scopes=scopes or set(), expiry=expiry)}"""
    html = dashboard_page(
        "API tokens", body, username=identity.username, is_admin=True, csrf_token=identity.csrf_token, section=SECTION
    )
    return web.Response(text=html, content_type="text/html", status=status)


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

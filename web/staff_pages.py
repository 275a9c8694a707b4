"""Server-rendered staff pages: sign-in, first-start setup, and the dashboard's layout (its
sections are in web/dashboard_pages.py). Every value from data is escaped; every asset is local."""

from __future__ import annotations

from html import escape

from kiosk.auth import MIN_PASSWORD_LENGTH, USERNAME_RULE
from web.pages import layout

CSRF_FIELD = "csrf_token"


# The dashboard's sections: (path, label, admin only).
SECTIONS = (
    ("/staff/", "Overview", False),
    ("/staff/artworks", "Artworks", False),
    ("/staff/photos", "Photos", False),
    ("/staff/kiosks", "Kiosks", False),
    ("/staff/settings", "Settings", True),
    ("/staff/users", "Users", True),
    ("/staff/tokens", "API tokens", True),
    ("/staff/audit", "Audit log", True),
)


def dashboard_page(title: str, body: str, *, username: str, is_admin: bool, csrf_token: str, section: str) -> str:
    """A signed-in staff page: the sections' navigation (``section`` is the current one's path) above ``body``."""
    current = ' aria-current="page"'
    links = "".join(
        f'<a href="{path}"{current if path == section else ""}>{escape(label)}</a>'
        for path, label, admin_only in SECTIONS
        if is_admin or not admin_only
    )
    nav = f"""<nav class="sections" aria-label="Dashboard">{links}
<form class="signout" method="post" action="/staff/logout">{_csrf(csrf_token)}
<span class="username">{escape(username)}</span> <button type="submit">Sign out</button></form></nav>"""
    return _layout(title, nav + body)


def _layout(title: str, body: str) -> str:
    return layout(
        title,
        body,
        header='<a class="brand" href="/staff/">ArtBooth</a> <span class="area">staff</span>',
        body_class="staff",
        site="ArtBooth staff",
        referrer="same-origin",
        robots="noindex, nofollow",
    )


def _alert(error: str | None) -> str:
    return f'<p class="error" role="alert">{escape(error)}</p>' if error else ""


def _csrf(token: str) -> str:
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">'


def login(*, csrf_token: str, error: str | None = None, username: str = "", next_path: str = "", setup_pending: bool = False) -> str:
    hint = (
        '<p class="note">No staff account exists yet. Open the setup link that <code>artbooth serve</code> '
        "printed in its log, or run <code>artbooth admin create-user NAME --role admin</code>.</p>"
        if setup_pending
        else ""
    )
    body = f"""<h1>Staff sign-in</h1>
{_alert(error)}
<form class="panel" method="post" action="/staff/login">
  {_csrf(csrf_token)}
  <input type="hidden" name="next" value="{escape(next_path)}">
  <label>Username <input name="username" value="{escape(username)}" autocomplete="username" autocapitalize="none" required autofocus></label>
  <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>
{hint}"""
    return _layout("Sign in", body)


def setup(*, setup_token: str, csrf_token: str, error: str | None = None, username: str = "") -> str:
    body = f"""<h1>Create the first administrator</h1>
<p>ArtBooth has no staff account yet. The administrator created here can sign in to the staff pages;
this page works once.</p>
{_alert(error)}
<form class="panel" method="post" action="/setup">
  {_csrf(csrf_token)}
  <input type="hidden" name="token" value="{escape(setup_token)}">
  <label>Username <input name="username" value="{escape(username)}" autocomplete="username" autocapitalize="none" required autofocus></label>
  <p class="note">Usernames are {escape(USERNAME_RULE)}.</p>
  <label>Password <input type="password" name="password" autocomplete="new-password" minlength="{MIN_PASSWORD_LENGTH}" required></label>
  <label>Password again <input type="password" name="password_again" autocomplete="new-password" minlength="{MIN_PASSWORD_LENGTH}" required></label>
  <p class="note">At least {MIN_PASSWORD_LENGTH} characters.</p>
  <button type="submit">Create administrator</button>
</form>"""
    return _layout("First start", body)


def refused(message: str) -> str:
    body = f"""<h1>Request refused</h1>
<p>{escape(message)}</p>
<p><a href="/staff/">Back to the staff pages</a></p>"""
    return _layout("Refused", body)


def not_found() -> str:
    return _layout("Not found", "<h1>Not found</h1>")

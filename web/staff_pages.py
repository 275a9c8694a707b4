"""Staff pages from the templates under web/templates/staff/ (each extends staff/base.html, the
dashboard's layout and navigation), in the language the request asks for: ``?lang=``, the language
cookie, the browser's Accept-Language, else the museum's default language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from db.models import StaffRole
from web.keys import PAGES_KEY, SETTINGS_KEY
from web.staff_text import SECTIONS

if TYPE_CHECKING:  # web.staff imports this module
    from web.staff import StaffIdentity

CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Viewer:
    """Who a signed-in page is for: what the layout needs to draw the navigation and its forms."""

    username: str
    role: StaffRole
    csrf_token: str

    @classmethod
    def of(cls, identity: StaffIdentity) -> Viewer:
        """The page's viewer: the signed-in staff member."""
        return cls(username=identity.username, role=identity.role, csrf_token=identity.csrf_token)

    @property
    def is_admin(self) -> bool:
        return self.role is StaffRole.ADMIN


def language(request: web.Request) -> str:
    return request.app[PAGES_KEY].language_of(request, request.app[SETTINGS_KEY].default_language)


def gettext(request: web.Request, message: str) -> str:
    """One staff string in the request's language, for text made in Python (an error message)."""
    return request.app[PAGES_KEY].gettext(language(request), message)


def html(
    request: web.Request, template: str, *, viewer: Viewer | None = None, section: str = "", status: int = 200, **context: object
) -> web.Response:
    """``template`` rendered for ``request``; ``viewer`` (signed in) gets the dashboard's navigation
    with ``section`` (a path of SECTIONS) marked as the current one."""
    return web.Response(text=render(request, template, viewer=viewer, section=section, **context), content_type="text/html", status=status)


def render(request: web.Request, template: str, *, viewer: Viewer | None = None, section: str = "", **context: object) -> str:
    # An error or refusal made in Python is shown in the page's language where the staff catalogue
    # has it (web/staff_text.py); one it lacks (an exception's own words) is shown as written.
    for name in ("error", "message"):
        if isinstance(context.get(name), str):
            context[name] = gettext(request, context[name])
    sections = [(path, label) for path, label, admin_only in SECTIONS if viewer is not None and (viewer.is_admin or not admin_only)]
    return request.app[PAGES_KEY].render(
        template, language(request), viewer=viewer, section=section, sections=sections, csrf_field=CSRF_FIELD, **context
    )

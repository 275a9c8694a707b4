"""The dashboard's Privacy page (admin): the privacy notice the booth shows before a visitor's first
photo, one text per language the service speaks (web/i18n.py: the shipped catalogues and any a
museum added).

The default language's text is the ``privacy_notice`` setting (also on the Settings page), the
others' the ``privacy_notices`` mapping (kiosk.settings.PRIVACY_FIELDS); both are stored and audited
as every dashboard setting is (db/overrides.py). An empty text means the notice made from the
settings in that language (web.visitor_text.privacy_notice), which the page shows as a placeholder.
"""

from __future__ import annotations

import dataclasses
import logging

from aiohttp import web

from db.models import StaffRole
from kiosk.settings import MAX_PRIVACY_NOTICE_CHARS, Settings, SettingsError
from web import staff_pages
from web.keys import PAGES_KEY, STORAGE_KEY
from web.staff import StaffIdentity, require_role
from web.uploads import read_form
from web.visitor_text import privacy_notice

log = logging.getLogger(__name__)

PAGE = "/staff/privacy"
# The notices after a redirect, by the query's name (no text from a URL reaches the page).
NOTICES = ("saved", "unchanged")
# A language's field in the form: "notice-fr", "notice-zh_Hans".
FIELD_PREFIX = "notice-"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PAGE, privacy_page)
    router.add_post(PAGE, save_privacy)


def _own_notices(settings: Settings, codes: list[str]) -> dict[str, str]:
    """Staff's own text for each language, "" where the generated notice is used."""
    return {
        code: settings.privacy_notice if code == settings.default_language else settings.privacy_notices.get(code, "")
        for code in codes
    }


def _page(
    request: web.Request, identity: StaffIdentity, *, status: int = 200, error: bool = False, typed: dict[str, str] | None = None
) -> web.Response:
    settings = request.app[STORAGE_KEY].settings
    pages = request.app[PAGES_KEY]
    languages = list(pages.catalogues.languages.values())
    own = _own_notices(settings, [language.code for language in languages]) | (typed or {})
    # What a language shows with an empty field: the notice made from the settings, in that language.
    generated = dataclasses.replace(settings, privacy_notice="", privacy_notices={})
    rows = [
        {
            "code": language.code,
            "tag": language.tag,
            "name": language.name,
            "field": FIELD_PREFIX + language.code,
            "value": own[language.code],
            "generated": privacy_notice(generated, pages, language.code),
            "is_default": language.code == settings.default_language,
        }
        for language in languages
    ]
    notice = request.query.get("notice")
    return staff_pages.html(
        request,
        "staff/privacy.html",
        viewer=staff_pages.Viewer(identity.username, identity.role, identity.csrf_token),
        section=PAGE,
        status=status,
        rows=rows,
        max_chars=MAX_PRIVACY_NOTICE_CHARS,
        notice=notice if notice in NOTICES else None,
        error=error,
    )


async def privacy_page(request: web.Request) -> web.StreamResponse:
    return _page(request, require_role(request, StaffRole.ADMIN))


async def save_privacy(request: web.Request) -> web.StreamResponse:
    identity = require_role(request, StaffRole.ADMIN)
    storage = request.app[STORAGE_KEY]
    codes = list(request.app[PAGES_KEY].catalogues.languages)
    form = await read_form(request)  # read (and checked) by the staff middleware's CSRF check already
    typed = {
        code: str(form[FIELD_PREFIX + code]).strip().replace("\r\n", "\n") for code in codes if FIELD_PREFIX + code in form
    }
    current = storage.settings
    others = dict(current.privacy_notices)
    for code, text in typed.items():
        if code == current.default_language:
            continue
        if text:
            others[code] = text
        else:
            others.pop(code, None)  # empty: back to the generated notice
    changes: dict[str, object] = {}
    default_text = typed.get(current.default_language)
    if default_text is not None and default_text != current.privacy_notice:
        changes["privacy_notice"] = default_text
    if others != current.privacy_notices:
        changes["privacy_notices"] = others
    if not changes:
        raise web.HTTPSeeOther(f"{PAGE}?notice=unchanged")
    try:
        await storage.change_settings(changes, actor=identity.username)
    except SettingsError as exc:
        log.info("%s's privacy notices were refused: %s", identity.username, exc)
        return _page(request, identity, status=400, error=True, typed=typed)
    log.info("%s changed the privacy notice (%s)", identity.username, ", ".join(sorted(changes)))
    raise web.HTTPSeeOther(f"{PAGE}?notice=saved")

"""Pages from Jinja2 templates (web/templates), autoescaped, their text from the gettext catalogues
(web/i18n.py) of the language each page is rendered in.

One Jinja2 environment per language, each with its translations installed (newstyle gettext: ``_()``
and ``{% trans %}`` escape their placeholders and fill them by name). Templates use ``_("…")`` for
text and ``{% trans count=n %}…{% pluralize %}…{% endtrans %}`` for plurals; a value from data is
never marked safe (the escaping test in tests/test_templates.py puts ``<script>`` into every field
staff can edit).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import jinja2
from aiohttp import web
from babel.dates import format_datetime

from kiosk.museum import MuseumIdentity
from kiosk.settings import Settings
from web.i18n import Catalogues, Language

TEMPLATES_DIR = Path(__file__).parent / "templates"
# The visitor's language is remembered for the pages that follow (booth, phone page, staff pages).
LANGUAGE_COOKIE = "artbooth_lang"


class Pages:
    def __init__(self, catalogues: Catalogues) -> None:
        self.catalogues = catalogues
        self._environments: dict[str, jinja2.Environment] = {}
        # The museum's name, logo URL and accent for every page (kiosk.museum.MuseumIdentity.for_pages),
        # set at start and whenever staff change them (use_identity); until then, none and the default accent.
        self.identity: dict[str, str | None] = MuseumIdentity.from_settings(Settings()).for_pages()

    def environment(self, language: str) -> jinja2.Environment:
        if language not in self._environments:
            environment = jinja2.Environment(
                loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                autoescape=True,
                undefined=jinja2.StrictUndefined,
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
            )
            environment.install_gettext_translations(self.catalogues.translations(language), newstyle=True)
            environment.globals["language"] = self.catalogues.languages.get(language) or self.catalogues.languages["en"]
            environment.globals["languages"] = list(self.catalogues.languages.values())
            environment.globals["identity"] = self.identity
            environment.filters["when"] = lambda moment: _when(moment, language)
            self._environments[language] = environment
        return self._environments[language]

    def use_identity(self, identity: dict[str, str | None]) -> None:
        """Show ``identity`` (MuseumIdentity.for_pages) on every page rendered from now on."""
        self.identity = identity
        for environment in self._environments.values():
            environment.globals["identity"] = identity

    def render(self, template: str, language: str, **context: object) -> str:
        return self.environment(language).get_template(template).render(**context)

    def gettext(self, language: str, message: str) -> str:
        """One string in ``language``, for text that is not a page (JSON for the booth's script)."""
        return self.catalogues.translations(language).ugettext(message)

    def language_of(self, request: web.Request, default: str) -> str:
        """The language a request asked for: ``?lang=``, then the cookie, then Accept-Language, then ``default``."""
        return (
            self.catalogues.known(request.query.get("lang"))
            or self.catalogues.known(request.cookies.get(LANGUAGE_COOKIE))
            or self.catalogues.negotiate(request.headers.get("Accept-Language"), default)
        )

    def language(self, code: str) -> Language:
        return self.catalogues.languages.get(code) or self.catalogues.languages["en"]


def _when(moment: datetime | None, language: str) -> str:
    """A moment in the language's own medium form, in UTC; pages that can (the phone's) show local time with script."""
    if moment is None:
        return ""
    return format_datetime(moment, "medium", tzinfo=None, locale=language) + " UTC"

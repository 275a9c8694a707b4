"""The application's shared objects, by typed key (aiohttp's AppKey)."""

from __future__ import annotations

from aiohttp import web

from kiosk.booths import Booths
from kiosk.catalogue import ArtworkCatalogue
from kiosk.settings import Settings
from kiosk.storage import Storage
from kiosk.workers import Composer
from web.templating import Pages

# The settings the service started with (defaults, file, environment). Those staff may change in the
# dashboard (kiosk.settings.DASHBOARD_FIELDS) are read from app[STORAGE_KEY].settings, which is
# replaced whenever staff change one.
SETTINGS_KEY = web.AppKey("settings", Settings)
STORAGE_KEY = web.AppKey("storage", Storage)
CATALOGUE_KEY = web.AppKey("catalogue", ArtworkCatalogue)
# This node's worker processes, or the queue to `artbooth worker`s (settings serve_role).
POOL_KEY = web.AppKey("pool", Composer)
THUMBNAILS_KEY = web.AppKey("thumbnails", dict)
BOOTHS_KEY = web.AppKey("booths", Booths)
# Templates and languages (web/templating.py, web/i18n.py): app[PAGES_KEY].render(template, language, ...).
PAGES_KEY = web.AppKey("pages", Pages)

"""Languages (issue 13): gettext catalogues, compiled with Babel when the service starts, and which
language a request gets.

Two catalogues (gettext domains) per language, so visitor-facing and staff-facing text are
translated and checked apart: ``web/locales/<code>/LC_MESSAGES/visitor.po`` (the booth, the phone
page, the public pages) and ``staff.po`` (sign-in, dashboard, set-up pages); a language's
translations are both merged. A museum adds or corrects a language by dropping a folder of the same
shape into ``settings.resolved_locales_dir`` (its messages win over shipped ones of the same code).
English is the source language: its strings are the msgids, so it needs no catalogue. Compiling the
``.po`` files in memory at start (Babel's ``read_po`` and ``write_mo``) means there is no build
step to forget and no stale ``.mo`` file to ship; fuzzy entries are left out.

Extraction, after changing a template or a marked string (one run per domain, README "Translations"):
    .venv/bin/pybabel extract -F babel-visitor.cfg -o web/locales/visitor.pot --no-location --omit-header .
    .venv/bin/pybabel update -D visitor -i web/locales/visitor.pot -d web/locales --no-fuzzy-matching
and the same with ``staff``.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

log = logging.getLogger(__name__)

SHIPPED_LOCALES_DIR = Path(__file__).parent / "locales"
SOURCE_LANGUAGE = "en"
DOMAINS = ("visitor", "staff")


@dataclass(frozen=True)
class Language:
    code: str  # the catalogue's folder name, Babel's form: "fr", "zh_Hans"
    tag: str  # the BCP 47 tag for <html lang> and Accept-Language: "fr", "zh-Hans"
    name: str  # its name in itself, for the booth's language choice: "Français", "中文 (简体)"


def _language(code: str) -> Language:
    locale = Locale.parse(code)
    name = locale.get_display_name(locale) or code
    return Language(code=code, tag=code.replace("_", "-"), name=name[:1].upper() + name[1:])


class Catalogues:
    """Every language the service can speak, each with its compiled translations."""

    def __init__(self, folders: list[Path]) -> None:
        self._translations: dict[str, NullTranslations] = {SOURCE_LANGUAGE: NullTranslations()}
        self.languages: dict[str, Language] = {SOURCE_LANGUAGE: _language(SOURCE_LANGUAGE)}
        for folder in folders:  # later folders win: the museum's own catalogues after the shipped ones
            for messages in sorted(path for path in folder.glob("*/LC_MESSAGES") if path.is_dir()):
                code = messages.parent.name
                try:
                    language = _language(code)
                    translations = _compiled(messages, code)
                except (UnknownLocaleError, ValueError, OSError) as exc:
                    log.warning("language %s left out: %s", messages.parent, exc)
                    continue
                if translations is None:
                    continue
                earlier = self._translations.get(code)
                if isinstance(earlier, Translations):  # the museum's strings over the shipped ones, message by message
                    earlier.merge(translations)
                else:
                    self._translations[code] = translations
                self.languages[code] = language

    def translations(self, code: str) -> NullTranslations:
        return self._translations.get(code, self._translations[SOURCE_LANGUAGE])

    def known(self, code: str | None) -> str | None:
        """``code`` (in either form, any case) as one of ours, or None."""
        if not code:
            return None
        wanted = code.replace("-", "_").lower()
        return next((known for known in self.languages if known.lower() == wanted), None)

    def negotiate(self, accept_language: str | None, default: str) -> str:
        """The best of ours for an Accept-Language header ("fr-CH, fr;q=0.9, en;q=0.8"), else ``default``."""
        for tag in _preferred_tags(accept_language or ""):
            exact = self.known(tag)
            if exact:
                return exact
            try:  # zh-CN and zh-TW are told apart by script; fr-CH is French
                locale = Locale.parse(tag, sep="-")
            except (UnknownLocaleError, ValueError):
                continue
            for candidate in (f"{locale.language}_{locale.script}" if locale.script else None, locale.language):
                if self.known(candidate):
                    return self.known(candidate)
        return self.known(default) or SOURCE_LANGUAGE


def _compiled(messages: Path, code: str) -> Translations | None:
    """Every domain's catalogue in ``messages`` compiled and merged into one; None when it has none."""
    merged = None
    for domain in DOMAINS:
        po_path = messages / f"{domain}.po"
        if not po_path.is_file():
            continue
        with po_path.open("rb") as po_file:
            catalogue = read_po(po_file, locale=code, domain=domain)
        mo = io.BytesIO()
        write_mo(mo, catalogue)  # fuzzy entries are left out: a guess never reaches a visitor
        mo.seek(0)
        translations = Translations(fp=mo, domain=domain)
        if merged is None:
            merged = translations
        else:
            merged.merge(translations)
    return merged


def _preferred_tags(header: str) -> list[str]:
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]

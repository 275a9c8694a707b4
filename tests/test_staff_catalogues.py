"""Every staff-facing string (templates under web/templates/staff/, web/staff_text.py) is translated
in every shipped staff catalogue, with the same placeholders and markup: staff never meet English in
the middle of their language, nor a page that fails on a missing name. The strings are extracted with
Babel's own API and the same mapping as the extraction command (babel-staff.cfg)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from web.i18n import SHIPPED_LOCALES_DIR

ROOT = Path(__file__).resolve().parents[1]
# The languages the museum's staff are promised (issue 13); English is the source.
LANGUAGES = ("fr", "de", "es", "it", "nl", "zh_Hans", "ja")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
TAG = re.compile(r"</?[a-z]+[^>]*>")


def _extracted() -> set[str | tuple[str, ...]]:
    with (ROOT / "babel-staff.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    messages = set()
    for _filename, _line, message, _comments, _context in extract_from_dir(ROOT, method_map, options_map):
        messages.add(message if isinstance(message, str) else tuple(message))
    return messages


EXTRACTED = _extracted()


def test_extraction_finds_the_dashboard_and_python_side_strings() -> None:
    # The mapping really reaches the templates and web/staff_text.py (a broken pattern finds nothing).
    assert {"Staff sign-in", "Withdraw this download link?", "Blends in very well", "Camera blocked: page not secure (use HTTPS)"} <= EXTRACTED


@pytest.mark.parametrize("code", LANGUAGES)
def test_the_catalogue_translates_every_staff_string_with_the_same_placeholders_and_markup(code: str) -> None:
    with (SHIPPED_LOCALES_DIR / code / "LC_MESSAGES" / "staff.po").open("rb") as po:
        catalogue = read_po(po, locale=code)
    missing, unfinished, wrong_placeholders, wrong_markup = [], [], [], []
    for source in EXTRACTED:
        message = catalogue.get(source if isinstance(source, str) else source[0])
        if message is None:
            missing.append(source)
            continue
        translations = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(translations):
            unfinished.append(source)
            continue
        sources = (source,) if isinstance(source, str) else source
        wanted = {name for text in sources for name in PLACEHOLDER.findall(text)}
        if any(set(PLACEHOLDER.findall(text)) != wanted for text in translations):
            wrong_placeholders.append(source)
        # A translation is markup (templates mark _()'s result safe): the same tags as the source, no
        # double quote that would end an attribute it is put in, no bare % (newstyle gettext formats it).
        if any(
            sorted(TAG.findall(text)) != sorted(TAG.findall(sources[0]))
            or ('"' in text and '"' not in sources[0])
            or "%" in PLACEHOLDER.sub("", text)
            for text in translations
        ):
            wrong_markup.append(source)
    assert not missing, f"{code}: not in staff.po (run the update in web/i18n.py, then translate): {missing}"
    assert not unfinished, f"{code}: untranslated or fuzzy: {unfinished}"
    assert not wrong_placeholders, f"{code}: placeholders differ from the source: {wrong_placeholders}"
    assert not wrong_markup, f"{code}: markup differs from the source: {wrong_markup}"

"""Every string of each gettext domain (web/i18n.py: visitor text from web/templates/visitor/ and
web/visitor_text.py, staff text from web/templates/staff/ and web/staff_text.py) is translated in
every shipped catalogue of that domain, with the same placeholders and markup: nobody meets English
in the middle of their language, nor a page that fails on a missing name. The strings are extracted
with Babel's own API and the same mappings as the extraction commands (babel-<domain>.cfg)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from web.i18n import DOMAINS, SHIPPED_LOCALES_DIR

ROOT = Path(__file__).resolve().parents[1]
# The languages the museum's visitors and staff are promised (issue 13); English is the source.
LANGUAGES = ("fr", "de", "es", "it", "nl", "zh_Hans", "ja")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
TAG = re.compile(r"</?[a-z]+[^>]*>")
# Strings each domain's mapping must reach (a broken pattern finds nothing): templates and Python side.
EXPECTED = {
    "visitor": {"Step into a painting", "Delete my photo now", "This booth's camera is not available"},
    "staff": {"Staff sign-in", "Withdraw this download link?", "Blends in very well", "Camera blocked: page not secure (use HTTPS)"},
}


@cache
def _extracted(domain: str) -> frozenset[str | tuple[str, ...]]:
    with (ROOT / f"babel-{domain}.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    messages = set()
    for _filename, _line, message, _comments, _context in extract_from_dir(ROOT, method_map, options_map):
        messages.add(message if isinstance(message, str) else tuple(message))
    return frozenset(messages)


@pytest.mark.parametrize("domain", DOMAINS)
def test_extraction_finds_the_templates_and_python_side_strings(domain: str) -> None:
    assert EXPECTED[domain] <= _extracted(domain)


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("code", LANGUAGES)
def test_the_catalogue_translates_every_string_with_the_same_placeholders_and_markup(domain: str, code: str) -> None:
    with (SHIPPED_LOCALES_DIR / code / "LC_MESSAGES" / f"{domain}.po").open("rb") as po:
        catalogue = read_po(po, locale=code)
    missing, unfinished, wrong_placeholders, wrong_markup = [], [], [], []
    for source in _extracted(domain):
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
    assert not missing, f"{code}: not in {domain}.po (run the update in web/i18n.py, then translate): {missing}"
    assert not unfinished, f"{code}: untranslated or fuzzy: {unfinished}"
    assert not wrong_placeholders, f"{code}: placeholders differ from the source: {wrong_placeholders}"
    assert not wrong_markup, f"{code}: markup differs from the source: {wrong_markup}"

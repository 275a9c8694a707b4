"""Languages (web/i18n.py): what a museum gets when it drops in a catalogue, and what a phone's
Accept-Language picks. No server: the catalogues and templates the service renders with."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from web.i18n import SHIPPED_LOCALES_DIR, Catalogues
from web.templating import Pages


def _drop(folder: Path, code: str, domain: str, messages: dict[str, str], *, fuzzy: set[str] = frozenset()) -> None:
    catalog = Catalog(locale=code, domain=domain)
    for message, translation in messages.items():
        catalog.add(message, translation, flags=("fuzzy",) if message in fuzzy else ())
    path = folder / code / "LC_MESSAGES" / f"{domain}.po"
    path.parent.mkdir(parents=True)
    with path.open("wb") as po_file:
        write_po(po_file, catalog)


def test_a_dropped_in_catalogue_adds_a_language_and_corrects_a_shipped_one(tmp_path: Path):
    _drop(
        tmp_path,
        "pt_BR",
        "visitor",
        {"Step into a painting": "Entre numa pintura", "Touch the screen to begin": "Toque na tela para começar"},
        fuzzy={"Touch the screen to begin"},
    )
    _drop(tmp_path, "fr", "visitor", {"Step into a painting": "Entrez dans le tableau"})
    _drop(tmp_path, "xx_Nowhere", "visitor", {"Step into a painting": "?"})  # not a language: left out
    pages = Pages(Catalogues([SHIPPED_LOCALES_DIR, tmp_path]))

    assert "pt_BR" in pages.catalogues.languages and "xx_Nowhere" not in pages.catalogues.languages
    assert pages.language("pt_BR").tag == "pt-BR" and pages.language("pt_BR").name.startswith("Português")
    assert pages.gettext("pt_BR", "Step into a painting") == "Entre numa pintura"
    # A guess marked fuzzy never reaches a visitor: the English stands in.
    assert pages.gettext("pt_BR", "Touch the screen to begin") == "Touch the screen to begin"
    # The museum's file wins over the shipped one; the shipped staff catalogue still speaks French.
    assert pages.gettext("fr", "Step into a painting") == "Entrez dans le tableau"
    assert pages.gettext("fr", "Sign in") != "Sign in"


def test_accept_language_picks_the_best_language_we_have():
    catalogues = Catalogues([SHIPPED_LOCALES_DIR])
    assert catalogues.negotiate("fr-CH, fr;q=0.9, en;q=0.8", "en") == "fr"
    assert catalogues.negotiate("zh-CN,zh;q=0.9", "en") == "zh_Hans"
    assert catalogues.negotiate("pt-BR, de;q=0.5", "en") == "de"
    assert catalogues.negotiate("pt-BR, *;q=0.5", "en") == "en"
    assert catalogues.negotiate("ja;q=0, nl", "fr") == "nl"
    assert catalogues.negotiate("", "it") == "it"
    assert catalogues.negotiate("nonsense;q=abc", "de") == "de"

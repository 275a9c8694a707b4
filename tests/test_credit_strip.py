"""The credit strip as a pure stage (pipeline/credit.py through kiosk/museum.py): what a visitor sees
at the bottom of the photo. The stored photo's strip, through the real service, is checked in
tests/test_museum_identity.py."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kiosk.museum import MuseumIdentity, credit_font_path
from kiosk.settings import Settings
from pipeline.credit import ELLIPSIS, _fitted, _fitting_font, credit_line, strip_height, text_colour
from pipeline.types import ArtworkSpec, Framing, NormBox

ACCENT = (138, 45, 31)  # the default accent, #8a2d1f


def _spec(title: str, artist: str = "Édouard Manet", year: str = "1863") -> ArtworkSpec:
    return ArtworkSpec(
        id="t", title=title, artist=artist, year=year, boxes={f: NormBox(0.3, 0.3, 0.7, 1.0) for f in Framing}
    )


@pytest.fixture(scope="module")
def identity(tmp_path_factory) -> MuseumIdentity:
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("museum")), museum_name="Musée d’Orsay")
    return MuseumIdentity.from_settings(settings)


@pytest.fixture(scope="module")
def painting() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(60, 200, (1080, 1920, 3), dtype=np.uint8)


def _band(image: np.ndarray, striped: np.ndarray) -> int:
    """How many rows at the bottom the strip changed."""
    changed = np.any(image != striped, axis=(1, 2))
    return int(len(changed) - np.argmax(changed)) if changed.any() else 0


def test_the_strip_is_a_band_along_the_bottom_in_the_accent_colour(identity, painting):
    striped = identity.credited(painting, _spec("Le Déjeuner sur l’herbe"))
    band = _band(painting, striped)
    assert striped.shape == painting.shape
    assert 0.04 * 1080 <= band <= 0.06 * 1080
    assert np.array_equal(striped[:-band], painting[:-band]), "the picture above the strip is untouched"
    strip = striped[-band:]
    background = np.all(strip == ACCENT, axis=2)
    assert 0.6 < background.mean() < 0.99, "mostly the accent colour, with text on it"
    # The text is white (the better contrast on the dark accent), drawn where the line is: at the left.
    text = np.all(strip > 200, axis=2)
    assert text[:, : 1920 // 2].sum() > 500 and text[:, 1920 // 2 :].sum() < text[:, : 1920 // 2].sum()


def test_tiny_photos_get_a_strip_still_tall_enough_to_read(identity):
    tiny = np.full((120, 160, 3), 128, np.uint8)
    striped = identity.credited(tiny, _spec("The Starry Night", "Vincent van Gogh", "1889"))
    assert _band(tiny, striped) == Settings().credit_strip_min_px
    assert strip_height((4000, 3000), identity.strip_style) == 150  # 5% of the short side


def test_text_colour_is_the_one_that_reads_on_the_strip():
    assert text_colour(ACCENT) == (255, 255, 255)
    assert text_colour((240, 230, 140)) == (0, 0, 0)  # a pale yellow accent gets black text


def test_a_long_title_is_shortened_and_the_artist_year_and_museum_stay(identity):
    font_path = identity.strip_style.font_path
    title = "Portrait of Adele Bloch-Bauer I, also known as The Lady in Gold or The Woman in Gold, " * 3
    line = credit_line(title, "Gustav Klimt", "1907", "Belvedere", font_path=font_path)
    font = _fitting_font(font_path, 54)
    shown = _fitted(line, font, 1700)
    assert shown.endswith(", Gustav Klimt, 1907 · Belvedere")
    assert ELLIPSIS in shown and font.getlength(shown) <= 1700
    assert shown.startswith("Portrait of Adele Bloch-Bauer I")


def test_shortening_never_splits_a_letter_from_its_accent(identity):
    font_path = identity.strip_style.font_path
    font = _fitting_font(font_path, 54)
    # "q́" has no single code point: a q and a combining accent, drawn as one letter.
    title = "Baq\u0301" * 60
    line = credit_line(title, "", "", "", font_path=font_path)
    for room in range(300, 420, 7):
        kept = _fitted(line, font, room).removesuffix(ELLIPSIS)
        assert kept and not kept.endswith("q"), f"a letter cut from its accent: {kept[-3:]!r}"


def test_titles_the_font_cannot_draw_are_left_out_rather_than_shown_as_boxes(identity):
    line = credit_line("神奈川沖浪裏", "Katsushika Hokusai", "c. 1831", "Musée Guimet", font_path=identity.strip_style.font_path)
    assert str(line) == "Katsushika Hokusai, c. 1831 · Musée Guimet"


def test_the_logo_sits_at_the_strips_left(tmp_path, painting):
    from kiosk.museum import prepare_logo

    settings = Settings(data_dir=tmp_path)
    logo = Image.new("RGBA", (200, 100), (0, 255, 0, 255))
    stored = io.BytesIO()
    logo.save(stored, "PNG")
    identity = dataclasses.replace(MuseumIdentity.from_settings(settings), logo_png=prepare_logo(stored.getvalue(), settings))
    striped = identity.credited(painting, _spec("Olympia"))
    strip = striped[-_band(painting, striped) :]
    green = np.all(strip == (0, 255, 0), axis=2)
    columns = np.flatnonzero(green.any(axis=0))
    assert green.sum() > 300 and columns.max() < 200, "a green logo, at the left"


def test_the_default_font_ships_in_an_installed_package():
    assert credit_font_path(Settings()).is_file()

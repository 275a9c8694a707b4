"""The credit strip: a band along the bottom of a photo naming the artwork and the museum.

A pure stage: a photo, a line of text, an optional logo and a style in; a new photo of the same
size out, its bottom rows covered by an opaque band in the style's colour, the logo at its left and
the text after it in black or white, whichever reads better on the band (WCAG contrast). Text too
long for the band ends in an ellipsis, cut between whole characters (a letter keeps its accents).
Characters the font has no glyph for would print as empty boxes: the parts holding them are left
out of the line (credit_line), the rest of it kept.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ELLIPSIS = "…"
# Between the artwork's fields, and before the museum.
FIELD_SEPARATOR = ", "
MUSEUM_SEPARATOR = " · "
# The text's cap-to-descender height as a share of the band; the rest is its margin.
TEXT_SHARE = 0.58
# Padding at the band's ends and between the logo and the text, as a share of the band's height.
PADDING_SHARE = 0.35
# A logo is at most this many band heights wide (a wide word mark stays beside the text).
LOGO_MAX_WIDTH_SHARE = 5.0
BLACK = (0, 0, 0)
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class CreditLine:
    """The strip's text: the artwork's title, and what follows it (its artist, year and the museum),
    which a long title gives way to: the title is shortened first."""

    title: str
    rest: str = ""

    def __str__(self) -> str:
        return self.title + self.rest


@dataclass(frozen=True)
class StripStyle:
    """How the band looks: its colour, its height (a share of the photo's shorter side, at least
    ``min_height_px``) and the font file its text is set in."""

    background: tuple[int, int, int]
    height_share: float
    min_height_px: int
    font_path: str


def strip_height(image_shape: Sequence[int], style: StripStyle) -> int:
    """The band's height on a photo of ``image_shape`` (height, width, ...): never more than a quarter of it."""
    height, width = image_shape[:2]
    wanted = max(style.min_height_px, round(style.height_share * min(height, width)))
    return max(1, min(wanted, height // 4))


def text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever has the higher WCAG contrast ratio against ``background``."""
    luminance = _relative_luminance(background)
    on_black = (luminance + 0.05) / 0.05
    on_white = 1.05 / (luminance + 0.05)
    return BLACK if on_black >= on_white else WHITE


def credit_line(title: str, artist: str, year: str, museum: str, *, font_path: str) -> CreditLine:
    """"Title, Artist, Year · Museum" from the parts that are given and that the font can draw."""
    font = _font(font_path, 32)
    title, museum = _drawable(font, title), _drawable(font, museum)
    rest = "".join(FIELD_SEPARATOR + part for part in (_drawable(font, artist), _drawable(font, year)) if part)
    if not title:
        rest = rest.removeprefix(FIELD_SEPARATOR)
    if museum:
        rest += MUSEUM_SEPARATOR + museum if title or rest else museum
    return CreditLine(title, rest)


def add_credit_strip(image: np.ndarray, text: CreditLine, style: StripStyle, logo: np.ndarray | None = None) -> np.ndarray:
    """``image`` (RGB uint8) with the band drawn over its bottom rows: ``logo`` (RGBA uint8) at the
    left, fitted to the band, then ``text``, shortened to fit."""
    height, width = image.shape[:2]
    band_height = strip_height(image.shape, style)
    band = Image.new("RGB", (width, band_height), style.background)
    padding = max(2, round(band_height * PADDING_SHARE))
    x = padding
    if logo is not None:
        x += _paste_logo(band, logo, x, padding) + padding
    font = _fitting_font(style.font_path, band_height)
    shown = _fitted(text, font, width - x - padding)
    if shown:
        # "lm": left-aligned at x, vertically centred on the middle of the ascender-descender line.
        ImageDraw.Draw(band).text((x, band_height / 2), shown, font=font, fill=text_colour(style.background), anchor="lm")
    out = image.copy()
    out[height - band_height :] = np.asarray(band)
    return out


def _paste_logo(band: Image.Image, logo: np.ndarray, x: int, padding: int) -> int:
    """Paste ``logo`` fitted into the band at ``x``; returns the width it took."""
    box_height = max(1, band.height - padding)
    logo_image = Image.fromarray(logo)  # H x W x 4: RGBA
    scale = min(box_height / logo_image.height, LOGO_MAX_WIDTH_SHARE * band.height / logo_image.width)
    size = (max(1, round(logo_image.width * scale)), max(1, round(logo_image.height * scale)))
    fitted = logo_image.resize(size, Image.Resampling.LANCZOS)
    band.paste(fitted, (x, (band.height - size[1]) // 2), fitted)
    return size[0]


def _fitting_font(font_path: str, band_height: int) -> ImageFont.FreeTypeFont:
    """The font at the size whose ink (ascender to descender) fills TEXT_SHARE of the band."""
    reference = _font(font_path, 100)
    ascent, descent = reference.getmetrics()
    size = max(6, int(100 * TEXT_SHARE * band_height / (ascent + descent)))
    return _font(font_path, size)


def _fitted(text: CreditLine, font: ImageFont.FreeTypeFont, room: float) -> str:
    """The whole line if it fits ``room`` pixels; else the title shortened before the rest; else
    (a narrow photo) the whole line shortened."""
    whole = str(text)
    if font.getlength(whole) <= room:
        return whole
    if text.title and text.rest:
        title = _shortened(text.title, font, room - font.getlength(text.rest))
        if title:
            return title + text.rest
    return _shortened(whole, font, room)


def _shortened(text: str, font: ImageFont.FreeTypeFont, room: float) -> str:
    """``text`` if it fits ``room`` pixels, else its longest start that fits with an ellipsis,
    cut before a whole character (never between a letter and its combining accents)."""
    text = unicodedata.normalize("NFC", text.strip())
    if room <= 0:
        return ""
    if font.getlength(text) <= room:
        return text
    cuts = [i for i in range(1, len(text)) if not unicodedata.combining(text[i])]
    # The longest start that fits: lengths grow with the cut, so search the cuts in halves.
    low, high, best = 0, len(cuts) - 1, ""
    while low <= high:
        middle = (low + high) // 2
        candidate = text[: cuts[middle]].rstrip(" ,·-–—") + ELLIPSIS
        if font.getlength(candidate) <= room:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best if best != ELLIPSIS else ""


@functools.lru_cache(maxsize=32)
def _font(font_path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path, size)


def _drawable(font: ImageFont.FreeTypeFont, part: str) -> str:
    part = unicodedata.normalize("NFC", " ".join(part.split()))
    return part if part and _can_draw(font, part) else ""


def _can_draw(font: ImageFont.FreeTypeFont, text: str) -> bool:
    """Whether the font has a glyph for every visible character of ``text``: a missing one draws
    as the font's "not defined" box, which a private-use character outside any font also draws as."""
    missing = _glyph_mask(font, "\U0010fffd")
    return all(char.isspace() or unicodedata.combining(char) or _glyph_mask(font, char) != missing for char in text)


@functools.lru_cache(maxsize=4096)  # a booth's few titles, drawn again and again
def _glyph_mask(font: ImageFont.FreeTypeFont, char: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


def _relative_luminance(colour: tuple[int, int, int]) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b

"""The museum's identity: its name, logo and accent colour, and the credit strip on its photos.

Loaded once (load_identity, at start and whenever staff change it on the dashboard's Museum
page, on any node) and passed to what shows it: the compose workers (each job carries it, so a
change needs no restart; an `artbooth worker` loads it for each job), and the pages
(web/templating.py's ``identity`` global, MuseumIdentity.for_pages).

The logo is an uploaded file, not a setting: checked and normalised by prepare_logo (PNG or JPEG,
size and pixel limits, fully decoded), stored as a PNG at most LOGO_LONG_SIDE pixels long in the
database (db/museum.py), which every node and worker shares, served at LOGO_ROUTE.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib.util
import io
import logging
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFont, ImageOps

from kiosk.errors import ArtBoothError, ExitCode
from kiosk.settings import Settings, SettingsError
from pipeline.codec import read_size
from pipeline.credit import StripStyle, add_credit_strip, credit_line
from pipeline.errors import EmptyImageError, ImageTooLargeError, NotAnImageError, PipelineError
from pipeline.types import ArtworkSpec

if TYPE_CHECKING:
    from kiosk.storage import Storage

log = logging.getLogger(__name__)

LOGO_ROUTE = "/museum/logo.png"
STYLESHEET_ROUTE = "/museum/identity.css"
# What a logo may be uploaded as: formats every browser and every museum's designer has.
LOGO_FORMATS = ("PNG", "JPEG")
# The stored logo's long side: a credit strip is at most ~200 px tall, a phone page's header less.
LOGO_LONG_SIDE = 512


async def load_identity(storage: Storage) -> MuseumIdentity:
    """The identity the settings in effect and the stored logo describe."""
    from db import museum as museum_db  # here: the compose workers, which import this module, need no database code

    logo = await museum_db.load_logo(storage.sessions)
    # Finding (and, for a font of the museum's own, opening) the strip's font: file work, off the event loop.
    return await asyncio.to_thread(MuseumIdentity.from_settings, storage.settings, logo)


async def adopt_logo_file(storage: Storage) -> None:
    """Move a logo stored where versions before the shared one kept it (``<data_dir>/museum/logo.png``)
    into the database, unless the database has one already; at start."""
    from db import museum as museum_db

    old = storage.settings.data_dir / "museum" / "logo.png"
    if not await asyncio.to_thread(old.is_file) or await museum_db.load_logo(storage.sessions) is not None:
        return
    png = await asyncio.to_thread(old.read_bytes)
    await museum_db.change_logo(
        storage.sessions, png, action="museum.logo", detail={"file": str(old), "bytes": len(png)},
        actor="upgrade", now=datetime.now(timezone.utc),
    )
    await asyncio.to_thread(old.unlink)
    log.info("the museum's logo moved from %s into the database, which every node shares", old)


def credit_font_path(settings: Settings) -> Path:
    """The strip's font: the setting, else DejaVu Sans from matplotlib's package data (its licence,
    Bitstream Vera's with DejaVu's changes in the public domain, allows use and redistribution)."""
    if settings.credit_strip_font is not None:
        try:
            ImageFont.truetype(str(settings.credit_strip_font), 12)
        except OSError as exc:
            raise SettingsError(f"credit_strip_font {settings.credit_strip_font} cannot be used as a font: {exc}") from None
        return settings.credit_strip_font
    spec = importlib.util.find_spec("matplotlib")  # found without importing matplotlib itself
    if spec is None or not spec.submodule_search_locations:
        raise ArtBoothError("the credit strip's font (matplotlib's DejaVu Sans) is not installed; set credit_strip_font")
    return Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"


class LogoRefusedError(ArtBoothError):
    """An uploaded logo that cannot be used: ``reason`` (a key the Museum page words in each
    language, with ``values``) and ``status``, the HTTP status that says why."""

    exit_code = ExitCode.NOT_AN_IMAGE

    def __init__(self, message: str, *, reason: str, status: int, **values: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.values = values


@dataclass(frozen=True)
class MuseumIdentity:
    name: str
    accent: str
    credit_strip: bool
    strip_style: StripStyle
    # The stored logo (a PNG, LOGO_LONG_SIDE at most), or None; it travels with each compose job.
    logo_png: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, logo_png: bytes | None = None) -> MuseumIdentity:
        style = StripStyle(
            background=_rgb(settings.museum_accent_colour),
            height_share=settings.credit_strip_height,
            min_height_px=settings.credit_strip_min_px,
            font_path=str(credit_font_path(settings)),
        )
        return cls(settings.museum_name, settings.museum_accent_colour.lower(), settings.credit_strip, style, logo_png)

    @property
    def logo_version(self) -> str | None:
        """A short hash of the logo, in its URL, so browsers fetch a replaced logo at once."""
        return hashlib.sha256(self.logo_png).hexdigest()[:12] if self.logo_png else None

    def for_pages(self) -> dict[str, str | None]:
        """What the booth's and the phone's pages show: ``name`` ("" when none), ``logo_url`` (None
        when none), ``accent`` (#rrggbb) and ``stylesheet_url`` (sets the CSS variable --accent)."""
        return {
            "name": self.name,
            "logo_url": f"{LOGO_ROUTE}?v={self.logo_version}" if self.logo_png else None,
            "accent": self.accent,
            "stylesheet_url": f"{STYLESHEET_ROUTE}?v={self.accent.lstrip('#')}",
        }

    def credited(self, image: np.ndarray, spec: ArtworkSpec) -> np.ndarray:
        """``image`` with the credit strip naming ``spec``'s artwork and the museum; itself when the strip is off."""
        if not self.credit_strip:
            return image
        text = credit_line(spec.title, spec.artist, spec.year, self.name, font_path=self.strip_style.font_path)
        logo = _decoded_logo(self.logo_png) if self.logo_png else None
        return add_credit_strip(image, text, self.strip_style, logo)


def prepare_logo(data: bytes, settings: Settings) -> bytes:
    """The uploaded ``data`` as the logo to store (a PNG, LOGO_LONG_SIDE at most), or LogoRefusedError
    saying why not: empty, over museum_logo_max_bytes, not an image, not PNG or JPEG, over
    museum_logo_max_pixels (read from the header, before any pixel is decoded), or damaged.
    CPU work: run it off the event loop."""
    if len(data) > settings.museum_logo_max_bytes:
        raise LogoRefusedError(
            f"the logo file is {len(data):,} bytes, over the limit of {settings.museum_logo_max_bytes:,}",
            reason="too_many_bytes",
            status=413,
            size=len(data),
            limit=settings.museum_logo_max_bytes,
        )
    try:
        read_size(data, max_pixels=settings.museum_logo_max_pixels)
    except EmptyImageError as exc:
        raise LogoRefusedError(str(exc), reason="empty", status=400) from None
    except NotAnImageError as exc:
        raise LogoRefusedError(str(exc), reason="not_an_image", status=415) from None
    except ImageTooLargeError as exc:
        raise LogoRefusedError(
            str(exc), reason="too_many_pixels", status=413, limit=settings.museum_logo_max_pixels
        ) from None
    except PipelineError as exc:
        raise LogoRefusedError(str(exc), reason="damaged", status=400) from None
    # The header was read and its size checked above, so these calls meet only a file's damage.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in LOGO_FORMATS:
                raise LogoRefusedError(
                    f"the logo must be a PNG or JPEG file, not {image.format}",
                    reason="wrong_format",
                    status=415,
                    format=image.format,
                )
            image.load()
            image = ImageOps.exif_transpose(image).convert("RGBA")
    except LogoRefusedError:
        raise
    except Exception:  # Pillow's parsers raise many kinds on damaged files (pipeline/codec.py)
        raise LogoRefusedError("the logo file is truncated or corrupt", reason="damaged", status=400) from None
    image.thumbnail((LOGO_LONG_SIDE, LOGO_LONG_SIDE), Image.Resampling.LANCZOS)
    stored = io.BytesIO()
    image.save(stored, "PNG", optimize=True)
    return stored.getvalue()


@functools.lru_cache(maxsize=2)
def _decoded_logo(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGBA"))


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)

"""The artworks the service offers, as the database holds them, and staff's changes to them.

Artworks that come with files (the artworks folder, the demos) are imported at start;
staff's choices (enabled, order) live only in the database, so the database is where every
lookup goes. Staff upload artworks too; their images go into the photo store.

A staff edit of a folder or demo artwork's metadata (title, credit, boxes, reference) must
survive the next start's import. The rule: the first such edit copies the artwork's image into
the photo store, which makes the artwork staff's; the import only manages artworks whose image
is still the library's (db.service.sync_artworks), so from then on the dashboard's version is
the artwork and its folder files are ignored. Enabling, disabling and reordering need no copy:
the import never changes those.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from db import service
from db.service import ArtworkRecord, ArtworkSyncReport
from db.store import StoredFileMissingError
from kiosk.artworks import DEMO_KEY_PREFIX, FOLDER_KEY_PREFIX, ArtworkLibrary, ArtworkSource
from kiosk.errors import (
    ArtworkImageError,
    ArtworkInUseError,
    ArtworkNotFoundError,
    ExitCode,
    InvalidEditError,
    exit_code_for,
)
from kiosk.files import write_atomically
from kiosk.looks import Harmonization, resolve_look
from kiosk.settings import ARTWORK_LOOKS, Settings
from kiosk.storage import Storage
from pipeline.codec import decode_image, encode_image
from pipeline.errors import ArtworkSpecError, PipelineError
from pipeline.types import ArtworkSpec, Framing, NormBox, ReferenceMode

log = logging.getLogger(__name__)

# Artwork images are re-encoded from their pixels (no metadata survives) at a quality that keeps paint texture.
ARTWORK_JPEG_QUALITY = 95
# Where an uploaded artwork's visitor lands until staff draw its boxes: a figure in the lower middle.
DEFAULT_BOXES = {
    Framing.CLOSE_UP: NormBox(0.30, 0.30, 0.70, 1.0),
    Framing.HALF_BODY: NormBox(0.25, 0.35, 0.75, 1.0),
    Framing.FULL_BODY: NormBox(0.40, 0.30, 0.60, 0.95),
}
# The artworks table's column sizes.
TEXT_LIMITS = {"title": 300, "artist": 300, "year": 64}
_SLUG_LENGTH = 60
# The columns whose edit makes a folder or demo artwork staff's (see the module's docstring).
_METADATA = frozenset({"title", "artist", "year", "boxes", "reference_region", "reference_mode"})


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP  # ArtworkEdit.reference_region, look, stylize_strength: leave it as it is (None removes it)


@dataclasses.dataclass(frozen=True)
class ArtworkEdit:
    """A change staff make to an artwork; every field left at None (reference_region: KEEP) stays as it is.

    ``boxes`` maps some or all framings ("close-up", "half-body", "full-body") to [x0, y0, x1, y1]
    in normalised image coordinates. A reference region given without a ``reference_mode`` makes
    the region the reference; removing the region while it is the reference falls back to the
    complete artwork. ``look`` (one of ARTWORK_LOOKS) and ``stylize_strength`` (0 to 1) set to None
    hand the choice back to the service's settings.
    """

    title: str | None = None
    artist: str | None = None
    year: str | None = None
    boxes: Mapping[str, Sequence[float]] | None = None
    reference_region: Sequence[float] | None | _Keep = KEEP
    reference_mode: str | None = None
    enabled: bool | None = None
    sort_order: int | None = None
    look: str | None | _Keep = KEEP
    stylize_strength: float | None | _Keep = KEEP


def demos_hidden(records: Sequence[ArtworkRecord]) -> bool:
    """Whether the demo artworks are kept from visitors: once staff enable a real (non-demo) artwork,
    the demos that showed the booth working would only get in the museum's way."""
    return any(record.enabled and record.available and not record.spec.demo for record in records)


def look_harmonization(
    record: ArtworkRecord, base: Harmonization, settings: Settings, *, chosen: str | None = None
) -> Harmonization:
    """``base`` (the harmonize settings in effect) in the look the artwork offers, or the one ``chosen``
    where the artwork leaves it to the visitor (kiosk.looks.resolve_look; LookError for a bad one),
    at the artwork's painted strength or the service's."""
    strength = record.stylize_strength if record.stylize_strength is not None else settings.stylize_strength
    look = resolve_look(record.look, chosen, settings)
    return dataclasses.replace(base, look=look, stylize_strength=strength)


def _library_key(image_key: str) -> bool:
    """Whether the image is the library's (folder or demo) rather than in the photo store."""
    return image_key.startswith((FOLDER_KEY_PREFIX, DEMO_KEY_PREFIX))


def slug(title: str) -> str:
    """An artwork id made from its title: lowercase ASCII letters, digits and dashes."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    made = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:_SLUG_LENGTH].strip("-")
    return made or "artwork"


class ArtworkCatalogue:
    def __init__(self, storage: Storage, library: ArtworkLibrary) -> None:
        self._storage = storage
        self._library = library

    async def sync(self) -> ArtworkSyncReport:
        """Import the folder's artworks and the demos (demo images are painted on first use)."""
        specs, keys = await asyncio.to_thread(self._library_contents)
        return await service.sync_artworks(
            self._storage.sessions, specs, keys, now=datetime.now(timezone.utc), imported=_library_key
        )

    def _library_contents(self) -> tuple[list[ArtworkSpec], dict[str, str]]:
        specs = self._library.specs()
        return specs, {spec.id: self._library.image_key(spec.id) for spec in specs}

    async def records(self, *, include_hidden: bool = False) -> list[ArtworkRecord]:
        """What visitors are offered, in staff's order: the enabled artworks whose files are present,
        less the demos once a real artwork is among them (see demos_hidden); every artwork with
        ``include_hidden``."""
        records = await service.list_artworks(self._storage.sessions, include_hidden=include_hidden)
        if include_hidden or not demos_hidden(records):
            return records
        return [record for record in records if not record.spec.demo]

    async def offered(self, artwork_id: str) -> ArtworkRecord:
        """The artwork if visitors may use it (enabled, its files present, not a hidden demo);
        ArtworkNotFoundError otherwise."""
        records = await self.records()
        record = next((record for record in records if record.spec.id == artwork_id), None)
        if record is None:
            offered = ", ".join(r.spec.id for r in records)
            raise ArtworkNotFoundError(f"no artwork {artwork_id!r}; the artworks on offer are: {offered}")
        return record

    async def source(self, artwork_id: str) -> ArtworkSource:
        return await self.source_of(await self.offered(artwork_id))

    async def source_of(self, record: ArtworkRecord) -> ArtworkSource:
        return ArtworkSource(spec=record.spec, image_path=await self.image_file(record))

    async def image_file(self, record: ArtworkRecord) -> Path:
        """A local file of the artwork's image, whatever the photo store: the library's or the local
        store's own file, or for an S3 store a copy fetched once into <data_dir>/artwork-cache (a
        changed image gets a new key, so a copy never goes stale)."""
        # A demo's image is painted on its first use: file work, off the event loop.
        path = await asyncio.to_thread(self._library.image_path, record.image_key)
        if path is None:
            path = self._storage.store.local_path(record.image_key)
        if path is not None:
            return path
        copy = self._storage.settings.data_dir / "artwork-cache" / record.image_key
        if not await asyncio.to_thread(copy.is_file):
            try:
                data = await self._storage.store.get(record.image_key)
            except StoredFileMissingError:
                raise ArtworkNotFoundError(f"artwork {record.spec.id!r}: its image is missing from the photo store") from None
            await asyncio.to_thread(write_atomically, copy, data)
        return copy

    async def offered_at(self, kiosk_id: str) -> list[ArtworkRecord]:
        """What the kiosk offers: the artworks staff chose for it, or every offered one when they chose
        none (or none of their choice is enabled any more: a booth never shows an empty carousel)."""
        records = await self.records()
        kiosk = await service.get_kiosk(self._storage.sessions, kiosk_id)
        if kiosk is None or not kiosk.artwork_ids:
            return records
        chosen = set(kiosk.artwork_ids)
        offered = [record for record in records if record.spec.id in chosen]
        if not offered:
            log.warning("kiosk %s: none of the artworks chosen for it is enabled; it offers all of them", kiosk_id)
            return records
        return offered

    async def offered_at_kiosk(self, kiosk_id: str, artwork_id: str) -> ArtworkRecord:
        """The artwork if the kiosk offers it; ArtworkNotFoundError naming what it offers otherwise."""
        offered = await self.offered_at(kiosk_id)
        for record in offered:
            if record.spec.id == artwork_id:
                return record
        names = ", ".join(record.spec.id for record in offered)
        raise ArtworkNotFoundError(f"kiosk {kiosk_id!r} does not offer an artwork {artwork_id!r}; it offers: {names}")

    # --- staff's changes ------------------------------------------------------------------------

    async def create(self, image_bytes: bytes, *, title: str, artist: str, year: str, actor: str) -> ArtworkRecord:
        """Add an uploaded artwork, enabled, with default boxes; its id is made from the title.
        ArtworkImageError for anything that is not an image within the limits; InvalidEditError
        for bad metadata."""
        texts = _texts({"title": title, "artist": artist, "year": year})
        settings = self._storage.settings
        if len(image_bytes) > settings.max_upload_bytes:
            raise ArtworkImageError(
                f"the image file is {len(image_bytes):,} bytes, over the limit of {settings.max_upload_bytes:,}",
                ExitCode.IMAGE_TOO_LARGE,
            )
        image_jpeg = await asyncio.to_thread(self._reencoded, image_bytes)
        return await service.add_artwork(
            self._storage.sessions,
            self._storage.store,
            image_jpeg=image_jpeg,
            slug=slug(texts["title"]),
            boxes={framing.value: box.to_list() for framing, box in DEFAULT_BOXES.items()},
            actor=actor,
            now=datetime.now(timezone.utc),
            **texts,
        )

    async def update(self, artwork_id: str, edit: ArtworkEdit, *, actor: str) -> ArtworkRecord:
        """Apply ``edit``; InvalidEditError says what to fix. The first metadata edit of a folder or
        demo artwork copies its image into the photo store (see the module's docstring)."""
        record = await service.get_artwork(self._storage.sessions, artwork_id)
        if record is None:
            raise ArtworkNotFoundError(f"no artwork {artwork_id!r}")
        current = _columns(record)
        values = _edited_columns(current, edit)
        image_jpeg = None
        if _library_key(record.image_key) and any(values[name] != current[name] for name in _METADATA & set(values)):
            image = await self.image_file(record)
            image_jpeg = await asyncio.to_thread(lambda: self._reencoded(image.read_bytes()))
        return await service.update_artwork(
            self._storage.sessions,
            self._storage.store,
            artwork_id,
            values,
            image_jpeg=image_jpeg,
            actor=actor,
            now=datetime.now(timezone.utc),
        )

    async def draft_source(self, artwork_id: str, edit: ArtworkEdit) -> ArtworkSource:
        """The artwork as ``edit`` would make it, unsaved: for trying boxes before saving them."""
        return await self.source_of(await self.draft(artwork_id, edit))

    async def draft(self, artwork_id: str, edit: ArtworkEdit) -> ArtworkRecord:
        """The artwork's record as ``edit`` would make it, unsaved (InvalidEditError as for update)."""
        record = await service.get_artwork(self._storage.sessions, artwork_id)
        if record is None:
            raise ArtworkNotFoundError(f"no artwork {artwork_id!r}")
        current = _columns(record)
        values = current | _edited_columns(current, edit)
        spec = ArtworkSpec.from_json(record.spec.to_json() | {name: values[name] for name in _SPEC_COLUMNS})
        return dataclasses.replace(
            record, spec=spec, look=values["look"], stylize_strength=values["stylize_strength"]
        )

    async def delete(self, artwork_id: str, *, actor: str) -> None:
        """Delete an uploaded (or edited) artwork no photo was made with; ArtworkInUseError otherwise."""
        record = await service.get_artwork(self._storage.sessions, artwork_id)
        if record is None:
            raise ArtworkNotFoundError(f"no artwork {artwork_id!r}")
        if record.image_key.startswith(DEMO_KEY_PREFIX):
            raise ArtworkInUseError(f"{record.spec.title!r} is a demo and comes back at every start; disable it instead")
        if record.image_key.startswith(FOLDER_KEY_PREFIX):
            raise ArtworkInUseError(
                f"{record.spec.title!r} comes from the artworks folder and would come back at the next start; "
                "disable it instead, or remove its files from the folder"
            )
        await service.delete_artwork(
            self._storage.sessions, self._storage.store, artwork_id, actor=actor, now=datetime.now(timezone.utc)
        )

    async def reorder(self, ids: Sequence[str], *, actor: str) -> None:
        """Offer the artworks ``ids`` first, in that order; the others follow as they were."""
        await service.reorder_artworks(self._storage.sessions, list(ids), actor=actor, now=datetime.now(timezone.utc))

    def _reencoded(self, data: bytes) -> bytes:
        try:
            image = decode_image(data, max_pixels=self._storage.settings.max_image_pixels)
        except PipelineError as exc:
            raise ArtworkImageError(f"the artwork image was refused: {exc}", exit_code_for(exc)) from None
        return encode_image(image, ".jpg", jpeg_quality=ARTWORK_JPEG_QUALITY)


# The spec's values (ArtworkSpec.to_json) that staff edit, as the artworks table stores them.
_SPEC_COLUMNS = ("title", "artist", "year", "boxes", "reference_region", "reference_mode")


def _columns(record: ArtworkRecord) -> dict[str, Any]:
    """The record's editable values as the artworks table stores them."""
    spec = record.spec.to_json()
    return {
        **{name: spec[name] for name in _SPEC_COLUMNS},
        "enabled": record.enabled,
        "sort_order": record.sort_order,
        "look": record.look,
        "stylize_strength": record.stylize_strength,
    }


def _texts(given: Mapping[str, str | None]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name, value in given.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidEditError(f"the {name} must be text")
        text = " ".join(value.split())
        if len(text) > TEXT_LIMITS[name] or not text.isprintable():
            raise InvalidEditError(f"the {name} must be at most {TEXT_LIMITS[name]} printable characters")
        texts[name] = text
    if texts.get("title") == "":
        raise InvalidEditError("give the artwork a title")
    if texts.get("artist") == "":
        texts["artist"] = "Unknown artist"  # as for folder artworks without one
    return texts


def _box(values: object, what: str) -> list[float]:
    if (
        not isinstance(values, (list, tuple))
        or len(values) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    ):
        raise InvalidEditError(f"the {what} must be four numbers [x0, y0, x1, y1], not {values!r}")
    try:
        box = NormBox(*(round(float(v), 4) for v in values))
    except ArtworkSpecError:
        raise InvalidEditError(
            f"the {what} {list(values)} must lie inside the image (0 to 1) with a positive width and height"
        ) from None
    return box.to_list()


def _edited_columns(current: Mapping[str, Any], edit: ArtworkEdit) -> dict[str, Any]:
    """The columns ``edit`` sets, validated, consistent with what it leaves as it is."""
    values: dict[str, Any] = dict(_texts({"title": edit.title, "artist": edit.artist, "year": edit.year}))
    if edit.boxes is not None:
        framings = {f.value for f in Framing}
        unknown = sorted(set(edit.boxes) - framings)
        if unknown:
            raise InvalidEditError(
                f"unknown framing {', '.join(map(repr, unknown))}: the framings are {', '.join(f.value for f in Framing)}"
            )
        values["boxes"] = {**current["boxes"], **{name: _box(box, f"{name} box") for name, box in edit.boxes.items()}}
    if edit.reference_region is not KEEP:
        region = edit.reference_region
        values["reference_region"] = _box(region, "reference region") if region is not None else None
    if edit.reference_mode is not None:
        if edit.reference_mode not in {m.value for m in ReferenceMode}:
            raise InvalidEditError(
                f"the reference must be one of {', '.join(m.value for m in ReferenceMode)}, not {edit.reference_mode!r}"
            )
        values["reference_mode"] = edit.reference_mode
    region = values.get("reference_region", current["reference_region"])
    if "reference_mode" not in values and "reference_region" in values:
        if region is not None:
            values["reference_mode"] = ReferenceMode.REGION.value
        elif current["reference_mode"] == ReferenceMode.REGION.value:
            values["reference_mode"] = ReferenceMode.ARTWORK.value
    if values.get("reference_mode", current["reference_mode"]) == ReferenceMode.REGION.value and region is None:
        raise InvalidEditError("draw the reference region, or choose another reference (the artwork or a ring)")
    if edit.enabled is not None:
        if not isinstance(edit.enabled, bool):
            raise InvalidEditError("enabled must be true or false")
        values["enabled"] = edit.enabled
    if edit.sort_order is not None:
        if not isinstance(edit.sort_order, int) or isinstance(edit.sort_order, bool) or edit.sort_order < 0:
            raise InvalidEditError("the position must be a whole number, 0 or more")
        values["sort_order"] = edit.sort_order
    if edit.look is not KEEP:
        if edit.look is not None and edit.look not in ARTWORK_LOOKS:
            raise InvalidEditError(
                f"the look must be one of {', '.join(ARTWORK_LOOKS)} (or none, for the service's default), "
                f"not {edit.look!r}"
            )
        values["look"] = edit.look
    if edit.stylize_strength is not KEEP:
        values["stylize_strength"] = _strength(edit.stylize_strength)
    return values


def _strength(value: object) -> float | None:
    if value is None:
        return None
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise InvalidEditError(
            f"the painted look's strength must be a number from 0 (the photo as it is) to 1 (fully painted), "
            f"not {value!r}"
        )
    return round(float(value), 3)

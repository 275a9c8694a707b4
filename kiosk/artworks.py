"""Artworks from a folder of images with JSON sidecars, plus the built-in demo gallery.

A folder artwork is ``<id>.jpg`` (or .jpeg, .png, .webp) beside ``<id>.json``::

    {"title": "The Starry Night", "artist": "Vincent van Gogh", "year": "1889",
     "boxes": {"close-up": [0.3, 0.3, 0.7, 1.0],
               "half-body": [0.25, 0.35, 0.75, 1.0],
               "full-body": [0.4, 0.3, 0.6, 0.95]},
     "reference_region": [0.0, 0.0, 1.0, 0.5], "reference_mode": "region"}

Boxes are normalised [x0, y0, x1, y1]. ``reference_region`` (optional) is the staff-chosen
rectangle harmonization matches; ``reference_mode`` is the default reference: "artwork"
(the complete artwork), "ring" (around the placement box) or "region" (the default when a
region is given).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from kiosk.demo_gallery import DEMO_ARTWORKS, DemoArtwork, paint
from kiosk.errors import ArtworkNotFoundError
from kiosk.files import write_atomically
from kiosk.settings import Settings
from pipeline.codec import decode_image, encode_image
from pipeline.errors import ArtworkSpecError, PipelineError
from pipeline.types import Artwork, ArtworkSpec, Framing, NormBox, ReferenceMode

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

FOLDER_KEY_PREFIX = "folder:"
DEMO_KEY_PREFIX = "demo:"


def parse_sidecar(artwork_id: str, data: object) -> ArtworkSpec:
    if not isinstance(data, dict):
        raise ArtworkSpecError(f"artwork {artwork_id!r}: the sidecar must hold a JSON object")
    boxes_data = data.get("boxes")
    if not isinstance(boxes_data, dict):
        raise ArtworkSpecError(f"artwork {artwork_id!r}: 'boxes' must map each framing to [x0, y0, x1, y1]")
    unknown = sorted(set(boxes_data) - {f.value for f in Framing})
    if unknown:
        raise ArtworkSpecError(f"artwork {artwork_id!r}: unknown framing {', '.join(unknown)} in 'boxes'")
    boxes = {Framing(name): NormBox.from_list(values) for name, values in boxes_data.items()}
    region = data.get("reference_region")
    mode = data.get("reference_mode", ReferenceMode.REGION.value if region is not None else ReferenceMode.ARTWORK.value)
    if mode not in {m.value for m in ReferenceMode}:
        raise ArtworkSpecError(
            f"artwork {artwork_id!r}: reference_mode must be one of {', '.join(m.value for m in ReferenceMode)}"
        )
    return ArtworkSpec(
        id=artwork_id,
        title=str(data.get("title") or artwork_id),
        artist=str(data.get("artist") or "Unknown artist"),
        year=str(data.get("year") or ""),
        boxes=boxes,
        reference_region=NormBox.from_list(region) if region is not None else None,
        reference_mode=ReferenceMode(mode),
    )


@dataclass(frozen=True)
class ArtworkSource:
    """An artwork as a worker needs it: its spec and the file holding its full-resolution image."""

    spec: ArtworkSpec
    image_path: Path

    def matched_against(self, reference: ReferenceMode | None) -> ArtworkSource:
        """The same artwork, its subjects harmonized to ``reference`` instead of its own choice (None: its own)."""
        if reference is None:
            return self
        return dataclasses.replace(self, spec=dataclasses.replace(self.spec, reference_mode=reference))


def load_artwork(source: ArtworkSource, *, max_pixels: int) -> Artwork:
    try:
        data = source.image_path.read_bytes()
    except OSError as exc:
        raise ArtworkNotFoundError(f"artwork {source.spec.id!r}: cannot read {source.image_path} ({exc.strerror})") from None
    try:
        return Artwork(spec=source.spec, image=decode_image(data, max_pixels=max_pixels))
    except PipelineError as exc:
        raise ArtworkSpecError(f"artwork image {source.image_path}: {exc}") from None


class ArtworkLibrary:
    """The artworks that come with files: the artworks folder and the demos.

    They are imported into the database at start (kiosk.catalogue), which is where the service
    looks artworks up; their images stay where they are, named by image keys
    (``folder:<file name>``, ``demo:<id>``).
    """

    def __init__(self, settings: Settings) -> None:
        self._folder = settings.resolved_artworks_dir
        self._demo_cache = settings.data_dir / "demo-artworks"

    def specs(self) -> list[ArtworkSpec]:
        """Every usable artwork: the folder's (by title), then the demos. Broken sidecars are logged and left out."""
        found: list[ArtworkSpec] = []
        for image_path in self._folder_images():
            try:
                found.append(self._read_spec(image_path.with_suffix(".json"), image_path.stem))
            except (ArtworkSpecError, OSError, ValueError) as exc:
                log.warning("skipping artwork %s: %s", image_path.name, exc)
        found.sort(key=lambda spec: spec.title.lower())
        return found + [demo.spec for demo in DEMO_ARTWORKS]

    def source(self, artwork_id: str) -> ArtworkSource:
        """One of this library's artworks by id (the service looks artworks up in the catalogue instead)."""
        spec = next((spec for spec in self.specs() if spec.id == artwork_id), None)
        if spec is None:
            raise ArtworkNotFoundError(f"no artwork {artwork_id!r} in {self._folder} or the demos")
        return ArtworkSource(spec=spec, image_path=self.image_path(self.image_key(artwork_id)))

    def image_key(self, artwork_id: str) -> str:
        if any(demo.spec.id == artwork_id for demo in DEMO_ARTWORKS):
            return DEMO_KEY_PREFIX + artwork_id
        for image_path in self._folder_images():
            if image_path.stem == artwork_id:
                return FOLDER_KEY_PREFIX + image_path.name
        raise ArtworkNotFoundError(f"no artwork {artwork_id!r} in {self._folder} or the demos")

    def image_path(self, image_key: str) -> Path | None:
        """The file behind one of this library's image keys (demos are painted on first use); None for other keys."""
        if image_key.startswith(DEMO_KEY_PREFIX):
            demo = next((d for d in DEMO_ARTWORKS if d.spec.id == image_key.removeprefix(DEMO_KEY_PREFIX)), None)
            if demo is None:
                raise ArtworkNotFoundError(f"no demo artwork for image key {image_key!r}")
            return self._painted_demo(demo)
        if image_key.startswith(FOLDER_KEY_PREFIX):
            name = image_key.removeprefix(FOLDER_KEY_PREFIX)
            # The key comes from the database; it must not name a file outside the folder.
            if Path(name).name != name or not name:
                raise ArtworkNotFoundError(f"not an artwork file name: {name!r}")
            return self._folder / name
        return None

    def source_from_files(self, path: Path) -> ArtworkSource:
        """An artwork from its image or sidecar path (the CLI's way to try one before installing it)."""
        if path.suffix.lower() == ".json":
            sidecar = path
            image_path = next((path.with_suffix(s) for s in IMAGE_SUFFIXES if path.with_suffix(s).exists()), None)
            if image_path is None:
                raise ArtworkNotFoundError(f"{path} has no image beside it ({'/'.join(IMAGE_SUFFIXES)})")
        else:
            image_path, sidecar = path, path.with_suffix(".json")
            if not sidecar.exists():
                raise ArtworkNotFoundError(f"{path} has no sidecar {sidecar.name} with its boxes")
        return ArtworkSource(spec=self._read_spec(sidecar, image_path.stem), image_path=image_path)

    def _folder_images(self) -> list[Path]:
        if not self._folder.is_dir():
            return []
        return sorted(
            p
            for p in self._folder.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and p.with_suffix(".json").exists() and _ID_PATTERN.match(p.stem)
        )

    def _read_spec(self, sidecar: Path, artwork_id: str) -> ArtworkSpec:
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ArtworkSpecError(f"artwork {artwork_id!r}: {sidecar.name} is not valid JSON ({exc})") from None
        return parse_sidecar(artwork_id, data)

    def _painted_demo(self, demo: DemoArtwork) -> Path:
        path = self._demo_cache / f"{demo.spec.id}.png"
        try:
            with Image.open(path) as cached:  # reads the header only
                if cached.size == demo.size:
                    return path
        except (OSError, Image.UnidentifiedImageError):
            pass  # not painted yet, or a damaged cache file: paint it again
        write_atomically(path, encode_image(paint(demo), ".png"))
        return path

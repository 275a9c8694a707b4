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

import json
import logging
import re
from pathlib import Path

import cv2
import numpy as np

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


class ArtworkLibrary:
    def __init__(self, settings: Settings) -> None:
        self._folder = settings.resolved_artworks_dir
        self._demo_cache = settings.data_dir / "demo-artworks"
        self._max_pixels = settings.max_image_pixels

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

    def get(self, artwork_id: str) -> Artwork:
        """An artwork by id only: ids come from visitors and API clients, paths never do."""
        demo = next((d for d in DEMO_ARTWORKS if d.spec.id == artwork_id), None)
        if demo is not None:
            return Artwork(spec=demo.spec, image=self._demo_image(demo))
        if _ID_PATTERN.match(artwork_id):
            for image_path in self._folder_images():
                if image_path.stem == artwork_id:
                    return self.load_files(image_path)
        known = ", ".join(spec.id for spec in self.specs())
        raise ArtworkNotFoundError(f"no artwork {artwork_id!r}; known artworks: {known}")

    def image_path(self, artwork_id: str) -> Path:
        """The file holding the artwork's full-resolution image (demos are painted on first use)."""
        demo = next((d for d in DEMO_ARTWORKS if d.spec.id == artwork_id), None)
        if demo is not None:
            self._demo_image(demo)
            return self._demo_path(demo)
        for image_path in self._folder_images():
            if image_path.stem == artwork_id:
                return image_path
        raise ArtworkNotFoundError(f"no artwork {artwork_id!r}")

    def _folder_images(self) -> list[Path]:
        if not self._folder.is_dir():
            return []
        return sorted(
            p for p in self._folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.with_suffix(".json").exists()
        )

    def _read_spec(self, sidecar: Path, artwork_id: str) -> ArtworkSpec:
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ArtworkSpecError(f"artwork {artwork_id!r}: {sidecar.name} is not valid JSON ({exc})") from None
        return parse_sidecar(artwork_id, data)

    def load_files(self, path: Path) -> Artwork:
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
        spec = self._read_spec(sidecar, image_path.stem)
        try:
            image = decode_image(image_path.read_bytes(), max_pixels=self._max_pixels)
        except PipelineError as exc:
            raise ArtworkSpecError(f"artwork image {image_path}: {exc}") from None
        return Artwork(spec=spec, image=image)

    def _demo_path(self, demo: DemoArtwork) -> Path:
        return self._demo_cache / f"{demo.spec.id}.png"

    def _demo_image(self, demo: DemoArtwork) -> np.ndarray:
        path = self._demo_path(demo)
        if path.exists():
            cached = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if cached is not None and cached.shape[1::-1] == demo.size:
                return cv2.cvtColor(cached, cv2.COLOR_BGR2RGB)
        image = paint(demo)
        write_atomically(path, encode_image(image, ".png"))
        return image

"""People composed into paintings through the real pipeline, and whether a harmonizer greys their faces.

Shared by bench/harmonization.py (the numbers) and bench/contact_sheet.py (the pictures). Each
person in ../shared/data/people is composed into each painting in ../shared/data/paintings by
the engine's compositor (matting, MTCNN faces, placement), once as the plain paste and once per
harmonizer. A face is measured inside the central 60% of its MTCNN box, mapped into the artwork.

"Greyed" is the benchmark's rule: the face's mean CIELAB chroma after harmonization may be lower
than in the plain paste by at most as much as the painting's own mean chroma is lower than the
face's (a face may become as muted as the painting, never greyer).
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kiosk.engine import build_compositor
from kiosk.settings import Settings
from pipeline.codec import decode_image
from pipeline.compose import Composition, Compositor
from pipeline.errors import PipelineError
from pipeline.harmonize.harmonizer import Harmonizer
from pipeline.harmonize.palette import mean_chroma
from pipeline.types import Artwork, ArtworkSpec, Framing, NormBox

SHARED = Path(__file__).resolve().parents[2] / "shared/data"
PAINTING_HEIGHT = 720
MAX_PIXELS = 50_000_000
# Where a visitor stands in a painting.
PAINTING_BOXES = {
    Framing.FULL_BODY: NormBox(0.38, 0.25, 0.62, 0.95),
    Framing.HALF_BODY: NormBox(0.28, 0.3, 0.72, 1.0),
    Framing.CLOSE_UP: NormBox(0.3, 0.25, 0.7, 1.0),
}
FACE_CORE = 0.6  # the share of a face box's width and height measured: skin, not hair or background


@dataclass(frozen=True)
class Case:
    person: str
    painting: str
    artwork: Artwork
    plain: Composition
    harmonized: dict[str, Composition]


def paintings(data: Path = SHARED) -> list[Artwork]:
    with (data / "paintings/index.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    artworks = []
    for row in rows:
        image = decode_image((data / "paintings" / row["file"]).read_bytes(), max_pixels=MAX_PIXELS)
        scale = PAINTING_HEIGHT / image.shape[0]
        image = cv2.resize(image, (round(image.shape[1] * scale), PAINTING_HEIGHT), interpolation=cv2.INTER_AREA)
        artworks.append(Artwork(ArtworkSpec(row["file"], row["title"], row["artist"], row["year"], PAINTING_BOXES), image))
    return artworks


def people(data: Path = SHARED) -> list[Path]:
    with (data / "people/index.csv").open() as fh:
        return [data / "people" / row["file"] for row in csv.DictReader(fh)]


def cases(
    settings: Settings, harmonizers: Mapping[str, Harmonizer], *, limit: int = 0, data: Path = SHARED
) -> Iterator[Case]:
    """Every person in every painting (the first ``limit`` pairs; 0: all), varying both from the start."""
    plain = build_compositor(dataclasses.replace(settings, harmonize=False))
    compositors: dict[str, Compositor] = {name: plain.with_harmonizer(h) for name, h in harmonizers.items()}
    artworks, photos = paintings(data), people(data)
    pairs = [(photos[i], artworks[(i + k) % len(artworks)]) for k in range(len(artworks)) for i in range(len(photos))]
    for person, artwork in pairs[: limit or None]:
        photo = decode_image(person.read_bytes(), max_pixels=MAX_PIXELS)
        try:
            pasted = plain(photo, artwork)
        except PipelineError as exc:
            print(f"skipped {person.name} in {artwork.spec.title}: {exc}")
            continue
        yield Case(person.name, artwork.spec.title, artwork, pasted, {n: c(photo, artwork) for n, c in compositors.items()})


def face_boxes(composition: Composition) -> list[tuple[int, int, int, int]]:
    """The central part of each MTCNN face box, in artwork pixels (clipped; empty ones dropped)."""
    subject, placement = composition.subject, composition.placement
    rx0, ry0 = placement.rect[:2]
    sx0, sy0 = subject.box[:2]
    height, width = composition.image.shape[:2]
    boxes = []
    for face in subject.faces:
        x0, y0, x1, y1 = face.box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        half_w, half_h = (x1 - x0) * FACE_CORE / 2, (y1 - y0) * FACE_CORE / 2
        ax0, ax1 = (rx0 + (v - sx0) * placement.scale for v in (cx - half_w, cx + half_w))
        ay0, ay1 = (ry0 + (v - sy0) * placement.scale for v in (cy - half_h, cy + half_h))
        box = (max(int(ax0), 0), max(int(ay0), 0), min(int(ax1), width), min(int(ay1), height))
        if box[2] - box[0] >= 3 and box[3] - box[1] >= 3:
            boxes.append(box)
    return boxes


def face_chroma(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    patch = image[y0:y1, x0:x1]
    return mean_chroma(patch, np.ones(patch.shape[:2], np.float32))


# A face's mean chroma moving by less than this (CIELAB units) is arithmetic, not greying: a face
# given its own pixels back measured 0.0002 below the plain paste's (a just noticeable difference is about 2).
CHROMA_NOISE = 0.05


@dataclass(frozen=True)
class FaceChroma:
    """The benchmarks' greying rule: a face may lose chroma only as far as the painting's own chroma is below the face's."""

    painting: float  # the painting's mean chroma
    plain: float  # the face in the plain paste
    after: float  # the face after harmonization

    @property
    def allowed_drop(self) -> float:
        return max(0.0, self.plain - self.painting)

    @property
    def greyed(self) -> bool:
        return self.plain - self.after > self.allowed_drop + CHROMA_NOISE


def face_chromas(case: Case, name: str) -> list[FaceChroma]:
    painting = mean_chroma(case.artwork.image, np.ones(case.artwork.image.shape[:2], np.float32))
    result = case.harmonized[name].image
    return [
        FaceChroma(painting, face_chroma(case.plain.image, box), face_chroma(result, box))
        for box in face_boxes(case.plain)
    ]

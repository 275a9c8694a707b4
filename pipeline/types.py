"""Typed values passed between pipeline stages.

Conventions: images are ``uint8`` RGB arrays of shape (H, W, 3); alphas are ``float32``
arrays of shape (H, W) in [0, 1]; pixel boxes are (x0, y0, x1, y1) with x1, y1 exclusive.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Iterator, TypeVar

import numpy as np

from pipeline.errors import ArtworkSpecError


class Framing(str, enum.Enum):
    CLOSE_UP = "close-up"
    HALF_BODY = "half-body"
    FULL_BODY = "full-body"


class ReferenceMode(str, enum.Enum):
    """Where harmonization takes the subject's target appearance from (see pipeline.harmonize.reference)."""

    ARTWORK = "artwork"
    RING = "ring"
    REGION = "region"


@dataclass(frozen=True)
class NormBox:
    """A box in normalised artwork coordinates: 0..1 from the left and top edges."""

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        values = (self.x0, self.y0, self.x1, self.y1)
        if not all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in values):
            raise ArtworkSpecError(f"box {list(values)} must have four numbers in 0..1")
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ArtworkSpecError(f"box {list(values)} must have x0 < x1 and y0 < y1")

    @classmethod
    def from_list(cls, values: object) -> NormBox:
        if not isinstance(values, (list, tuple)) or len(values) != 4:
            raise ArtworkSpecError(f"a box is [x0, y0, x1, y1], got {values!r}")
        return cls(*values)

    def to_list(self) -> list[float]:
        return [self.x0, self.y0, self.x1, self.y1]

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        return (
            round(self.x0 * width),
            round(self.y0 * height),
            round(self.x1 * width),
            round(self.y1 * height),
        )


@dataclass(frozen=True)
class ArtworkSpec:
    """What staff define for an artwork: metadata, one placement box per framing, a reference region."""

    id: str
    title: str
    artist: str
    year: str
    boxes: dict[Framing, NormBox]
    reference_region: NormBox | None = None
    reference_mode: ReferenceMode = ReferenceMode.ARTWORK
    demo: bool = False

    def __post_init__(self) -> None:
        missing = [f.value for f in Framing if f not in self.boxes]
        if missing:
            raise ArtworkSpecError(f"artwork {self.id!r} has no box for {', '.join(missing)}")

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON values: the pages' and the API's artworks, a queued job's artwork."""
        return {
            "id": self.id,
            "title": self.title,
            "artist": self.artist,
            "year": self.year,
            "demo": self.demo,
            "boxes": {framing.value: box.to_list() for framing, box in self.boxes.items()},
            "reference_region": self.reference_region.to_list() if self.reference_region else None,
            "reference_mode": self.reference_mode.value,
        }

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> ArtworkSpec:
        """The spec to_json gave."""
        region = values["reference_region"]
        return cls(
            id=values["id"],
            title=values["title"],
            artist=values["artist"],
            year=values["year"],
            boxes={Framing(name): NormBox.from_list(box) for name, box in values["boxes"].items()},
            reference_region=NormBox.from_list(region) if region is not None else None,
            reference_mode=ReferenceMode(values["reference_mode"]),
            demo=bool(values["demo"]),
        )


@dataclass(frozen=True)
class Artwork:
    spec: ArtworkSpec
    image: np.ndarray  # RGB uint8

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @functools.cached_property
    def identity(self) -> str:
        """The image's digest (``image_identity``): what caches of its styles and reference regions key on."""
        return image_identity(self.image)


def image_identity(image: np.ndarray) -> str:
    """A digest of the pixels, for cache keys of images that have no file (about 3 ms per megapixel)."""
    digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16)
    digest.update(repr(image.shape).encode())
    return digest.hexdigest()


Value = TypeVar("Value")


class BoundedCache(Generic[Value]):
    """Values by key, each computed once; the least recently used dropped beyond ``size``. Safe to
    share between threads (the preview's renderers share one harmonizer); two threads missing the
    same key at once may both compute it."""

    def __init__(self, size: int = 8) -> None:
        if size < 1:
            raise ValueError("a bounded cache holds at least one value")
        self._size = size
        self._values: OrderedDict[Hashable, Value] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def get(self, key: Hashable, compute: Callable[[], Value]) -> Value:
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
                return value
        value = compute()  # outside the lock: other keys are not held up meanwhile
        with self._lock:
            self._values[key] = value
            while len(self._values) > self._size:
                self._values.popitem(last=False)
        return value


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # photo pixels
    probability: float
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, mouth left, mouth right

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


@dataclass(frozen=True)
class Subject:
    """The people found in a photo, as one subject to place."""

    faces: list[Face]  # faces that lie on the subject, the others dropped
    alpha: np.ndarray  # the matte's alpha restricted to the components that hold a face
    box: tuple[int, int, int, int]  # bounding box of ``alpha`` in photo pixels
    framing: Framing
    reaches_bottom: bool
    face_to_silhouette: float  # median face height / silhouette height, the framing rule's input

    @property
    def people(self) -> int:
        return len(self.faces)


@dataclass(frozen=True)
class Placement:
    """Where the subject lands in the artwork."""

    framing: Framing
    box: tuple[int, int, int, int]  # the framing box in artwork pixels
    scale: float  # photo pixels -> artwork pixels
    rect: tuple[int, int, int, int]  # the scaled subject crop in artwork pixels (may extend past the edges)


@dataclass(frozen=True)
class StageTimings:
    """Milliseconds per stage, in the order they ran: ``ms`` one after another (they add up to the
    whole), ``beside`` the stages that ran on another thread during one of them (face detection
    beside the matting)."""

    ms: dict[str, float] = field(default_factory=dict)
    beside: dict[str, float] = field(default_factory=dict)

    def measure(self, stage: str) -> AbstractContextManager[None]:
        return _added_up(self.ms, stage)

    def measure_beside(self, stage: str) -> AbstractContextManager[None]:
        return _added_up(self.beside, stage)


@contextmanager
def _added_up(timings: dict[str, float], stage: str) -> Iterator[None]:
    """The milliseconds the block takes, added to ``timings[stage]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000.0

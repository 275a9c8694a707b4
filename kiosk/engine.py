"""The capture engine: models loaded once from the model store, composing bytes into results.

The CLI runs one in-process; the web service runs one per worker process.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kiosk.artworks import ArtworkSource, load_artwork
from kiosk.errors import ArtworkNotFoundError
from kiosk.models import ModelStore
from kiosk.settings import Settings
from pipeline.codec import decode_image, encode_image
from pipeline.compose import Composition, Compositor
from pipeline.harmonize.fit import match_reference
from pipeline.harmonize.harmonizer import Harmonizer
from pipeline.harmonize.learned import LearnedTargets
from pipeline.harmonize.palette import PaletteGuard
from pipeline.harmonize.score import HarmonyScorer
from pipeline.matting import ModnetSegmenter, Segmenter
from pipeline.rmbg import RmbgSegmenter
from pipeline.types import Artwork, StageTimings


LEARNED_TARGETS_FILE = "target_stats.npz"
HARMONY_SCORE_FILE = "harmony_score.npz"
# Harmonizers besides the settings' one each engine keeps (a few kilobytes of weights each).
OTHER_HARMONIZERS_KEPT = 4


def build_capture_segmenter(settings: Settings, store: ModelStore) -> Segmenter:
    if settings.segmenter == "modnet":
        return ModnetSegmenter(
            store.modnet_session(),
            long_side=settings.matting_long_side,
            refine_radius=settings.matting_refine_radius,
        )
    return RmbgSegmenter(store.rmbg_model(), backend=settings.segmenter)


def _package_weights(name: str) -> dict[str, np.ndarray]:
    """A small model shipped inside the pipeline package (trained in this repository)."""
    resource = importlib.resources.files("pipeline.harmonize") / "models" / name
    with resource.open("rb") as fh, np.load(fh) as data:
        return {key: data[key] for key in data.files}


def load_harmonizer(settings: Settings, targets: str | None = None) -> Harmonizer:
    """The harmonizer with the target provider named by ``targets`` (default: the setting).

    ``fitted`` (paintings) is guarded: skin kept in skin hues, the subject no greyer than the
    painting. ``learned`` (photographic artworks) runs as trained: on photos the guard's floors
    cost more than they save (Lalonde fMSE)."""
    targets = targets or settings.harmonize_targets
    providers = {"learned": LearnedTargets(_package_weights(LEARNED_TARGETS_FILE)), "fitted": match_reference}
    return Harmonizer(
        providers,
        HarmonyScorer(_package_weights(HARMONY_SCORE_FILE)),
        default_targets=targets,
        strength=settings.harmonize_strength,
        palette_guard=PaletteGuard() if targets == "fitted" else None,
    )


def use_torch_threads(settings: Settings) -> None:
    """Give torch the settings' thread count (0: torch decides), before the models run."""
    if settings.torch_threads > 0:
        torch.set_num_threads(settings.torch_threads)


def build_compositor(settings: Settings, store: ModelStore | None = None) -> Compositor:
    store = store or ModelStore(settings)
    use_torch_threads(settings)
    harmonizer = load_harmonizer(settings) if settings.harmonize else None
    return Compositor(build_capture_segmenter(settings, store), store.face_detector(), harmonizer)


@dataclass(frozen=True)
class Harmonization:
    """How a composition is harmonized: the harmonize settings in effect, or what staff chose to
    re-run a photo with."""

    enabled: bool
    targets: str
    strength: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Harmonization:
        return cls(settings.harmonize, settings.harmonize_targets, settings.harmonize_strength)

    def applied_to(self, settings: Settings) -> Settings:
        """``settings`` with these harmonize values (checked as settings values are)."""
        return dataclasses.replace(
            settings, harmonize=self.enabled, harmonize_targets=self.targets, harmonize_strength=self.strength
        )


@dataclass(frozen=True)
class ComposeResult:
    composition: Composition
    artwork: Artwork
    encoded: bytes

    def report(self) -> dict[str, object]:
        """The result as JSON-friendly values, shared by `artbooth compose --json` and the web API."""
        subject = self.composition.subject
        placement = self.composition.placement
        return {
            "artwork": self.artwork.spec.id,
            "people": subject.people,
            "framing": subject.framing.value,
            "faces": [
                {"box": [round(v, 1) for v in face.box], "p": round(face.probability, 4)}
                for face in subject.faces
            ],
            "subject_box": list(subject.box),
            "placement": {"box": list(placement.box), "rect": list(placement.rect), "scale": round(placement.scale, 4)},
            "timings_ms": {stage: round(ms, 1) for stage, ms in self.composition.timings.ms.items()},
        } | self._harmony_report()

    def _harmony_report(self) -> dict[str, object]:
        harmonized = self.composition.harmonized
        if harmonized is None:
            return {}
        return {
            "variant": harmonized.chosen.as_dict() | {"texture": harmonized.texture.as_dict()},
            "scores": {c.variant.name: round(c.score, 4) for c in harmonized.candidates},
            "score": round(harmonized.chosen.score, 4),
        }


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._artworks: dict[tuple[Path, int, int], Artwork] = {}
        # The models shared with other harmonizers: the defaults changed in the dashboard, or a re-run.
        self._other_compositors: dict[Harmonization, Compositor] = {}

    @functools.cached_property
    def compositor(self) -> Compositor:
        # Loaded on first use, so a bad photo or artwork is refused before seconds of model loading.
        return build_compositor(self.settings)

    def compose(
        self,
        photo_bytes: bytes,
        artwork: ArtworkSource,
        *,
        output_suffix: str = ".jpg",
        harmonization: Harmonization | None = None,
    ) -> ComposeResult:
        """Compose with ``harmonization`` (by default as the engine's settings say)."""
        timings = StageTimings()
        with timings.measure("decode"):
            photo = decode_image(photo_bytes, max_pixels=self.settings.max_image_pixels)
        with timings.measure("artwork"):
            loaded = self._artwork(artwork)
        with timings.measure("models"):
            compositor = self._compositor(harmonization)  # about 0 ms once loaded
        composition = compositor(photo, loaded, timings)
        with timings.measure("encode"):
            encoded = encode_image(composition.image, output_suffix)
        return ComposeResult(composition=composition, artwork=loaded, encoded=encoded)

    def _compositor(self, harmonization: Harmonization | None) -> Compositor:
        if harmonization is None or harmonization == Harmonization.from_settings(self.settings):
            return self.compositor
        compositor = self._other_compositors.get(harmonization)
        if compositor is None:
            settings = harmonization.applied_to(self.settings)
            compositor = self.compositor.with_harmonizer(load_harmonizer(settings) if settings.harmonize else None)
            if len(self._other_compositors) >= OTHER_HARMONIZERS_KEPT:
                self._other_compositors.pop(next(iter(self._other_compositors)))
            self._other_compositors[harmonization] = compositor
        return compositor

    def _artwork(self, source: ArtworkSource) -> Artwork:
        # Decoding a large painting costs more than a capture's matting; a booth reuses a few artworks.
        try:
            stat = source.image_path.stat()
        except OSError as exc:
            raise ArtworkNotFoundError(f"artwork {source.spec.id!r}: cannot read {source.image_path} ({exc.strerror})") from None
        cache_key = (source.image_path, stat.st_mtime_ns, stat.st_size)
        cached = self._artworks.get(cache_key)
        if cached is None:
            if len(self._artworks) >= self.settings.artwork_cache_size:
                self._artworks.pop(next(iter(self._artworks)))
            cached = self._artworks[cache_key] = load_artwork(source, max_pixels=self.settings.max_image_pixels)
        # The spec (boxes, reference) may have changed in the database while the image did not.
        return cached if cached.spec == source.spec else Artwork(spec=source.spec, image=cached.image)

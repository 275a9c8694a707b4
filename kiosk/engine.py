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
from kiosk.looks import Harmonization
from kiosk.models import ModelStore
from kiosk.museum import MuseumIdentity
from kiosk.settings import Settings
from pipeline.codec import decode_image, encode_image, shrunk_to
from pipeline.compose import Composition, Compositor
from pipeline.harmonize.fit import match_reference
from pipeline.harmonize.harmonizer import Harmonizer, Reference
from pipeline.harmonize.learned import LearnedTargets
from pipeline.harmonize.palette import PaletteGuard
from pipeline.harmonize.score import HarmonyScorer
from pipeline.looks import PaintedStage
from pipeline.matting import ModnetSegmenter, Segmenter
from pipeline.rmbg import RmbgSegmenter
from pipeline.types import Artwork, ArtworkSpec, BoundedCache, Framing, NormBox, StageTimings


LEARNED_TARGETS_FILE = "target_stats.npz"
HARMONY_SCORE_FILE = "harmony_score.npz"
# Compositors besides the settings' one each engine keeps: harmonizers of a few kilobytes of weights
# each, the painted look's stage sharing the engine's networks and style cache. A booth alternates
# between both looks and a few artworks' painted strengths.
OTHER_HARMONIZERS_KEPT = 8
# The warm-up's generated composition: a booth camera's photo onto a typical artwork.
WARM_UP_PHOTO_SIZE = (1280, 720)
WARM_UP_ARTWORK_SIZE = (1920, 1080)


def build_capture_segmenter(settings: Settings, store: ModelStore) -> Segmenter:
    if settings.segmenter == "modnet":
        return ModnetSegmenter(
            store.modnet_session(),
            long_side=settings.matting_long_side,
            refine_radius=settings.matting_refine_radius,
            band_width=settings.matting_band_width if settings.matting_band_solve else None,
        )
    return RmbgSegmenter(store.rmbg_model(), backend=settings.segmenter)


def _package_weights(name: str) -> dict[str, np.ndarray]:
    """A small model shipped inside the pipeline package (trained in this repository)."""
    resource = importlib.resources.files("pipeline.harmonize") / "models" / name
    with resource.open("rb") as fh, np.load(fh) as data:
        return {key: data[key] for key in data.files}


def load_harmonizer(
    settings: Settings, targets: str | None = None, *, references: BoundedCache[Reference] | None = None
) -> Harmonizer:
    """The harmonizer with the target provider named by ``targets`` (default: the setting).

    ``fitted`` (paintings) is guarded: skin kept in skin hues, the subject no greyer than the
    painting. ``learned`` (photographic artworks) runs as trained: on photos the guard's floors
    cost more than they save (Lalonde fMSE). ``references``: the described reference regions to
    share with other harmonizers (they do not depend on targets or strength); by default its own."""
    targets = targets or settings.harmonize_targets
    providers = {"learned": LearnedTargets(_package_weights(LEARNED_TARGETS_FILE)), "fitted": match_reference}
    return Harmonizer(
        providers,
        HarmonyScorer(_package_weights(HARMONY_SCORE_FILE)),
        default_targets=targets,
        strength=settings.harmonize_strength,
        palette_guard=PaletteGuard() if targets == "fitted" else None,
        references=references if references is not None else reference_cache(settings),
    )


def reference_cache(settings: Settings) -> BoundedCache[Reference]:
    """Described reference regions: two per artwork and framing (stylize_style_cache_size's count of those)."""
    return BoundedCache(2 * settings.stylize_style_cache_size)


def use_torch_threads(settings: Settings) -> None:
    """Give torch the settings' thread count before the models run. 0: one thread where torch runs
    only MTCNN (the MODNet segmenter runs on onnxruntime), else torch decides (RMBG). MTCNN's many
    small convolutions lose to OpenMP's spinning threads on 2 busy cores: 630-1100 ms per detection
    of a 1280x720 photo with two threads against 140-220 ms with one (measured side by side, as the
    live preview found: settings.preview_torch_threads)."""
    if settings.torch_threads > 0:
        torch.set_num_threads(settings.torch_threads)
    elif settings.segmenter == "modnet":
        torch.set_num_threads(1)


def build_compositor(
    settings: Settings, store: ModelStore | None = None, *, references: BoundedCache[Reference] | None = None
) -> Compositor:
    store = store or ModelStore(settings)
    use_torch_threads(settings)
    harmonizer = load_harmonizer(settings, references=references) if settings.harmonize else None
    return Compositor(build_capture_segmenter(settings, store), store.face_detector(), harmonizer)


@dataclass(frozen=True)
class ComposeResult:
    composition: Composition
    artwork: Artwork
    encoded: bytes
    # The picture encoded: the composition's, with the credit strip when one was asked for.
    image: np.ndarray

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
            # Faces the looks made greyer than the painting allows, given their own pixels back.
            "faces_restored": self.composition.faces_restored,
            "timings_ms": {stage: round(ms, 1) for stage, ms in self.composition.timings.ms.items()},
            # Stages that ran on another thread during one of timings_ms's (not to be added to them).
            "timings_beside_ms": {stage: round(ms, 1) for stage, ms in self.composition.timings.beside.items()},
        } | self._harmony_report()

    def _harmony_report(self) -> dict[str, object]:
        """The look, and every candidate scored on the way: the colour-and-light variants, then the
        painted variants; ``kept`` marks the one kept at each stage, ``score`` is the final picture's."""
        composition = self.composition
        harmonized, painted = composition.harmonized, composition.painted
        report: dict[str, object] = {"look": composition.look, "candidates": []}
        if harmonized is not None:
            report["candidates"] = [
                {"stage": "colour_light", "name": c.variant.name, "score": round(c.score, 4), "kept": c is harmonized.chosen}
                for c in harmonized.candidates
            ]
            report |= {
                "variant": harmonized.chosen.as_dict() | {"texture": harmonized.texture.as_dict()},
                "scores": {c.variant.name: round(c.score, 4) for c in harmonized.candidates},
                "score": round(harmonized.chosen.score, 4),
            }
        if painted is not None:
            report["candidates"] += [
                {"stage": "painted"} | c.as_dict() | {"kept": c is painted.chosen} for c in painted.candidates
            ]
            report["stylize"] = painted.as_dict()
            if harmonized is not None:  # the stored variant says what was done: colour and light, then paint
                report["variant"] = report["variant"] | {"painted": painted.chosen.as_dict()}
            if painted.chosen.score is not None:
                report["scores"] |= {c.name: round(c.score, 4) for c in painted.candidates}
                report["score"] = round(painted.chosen.score, 4)
        return report


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._artworks: dict[tuple[Path, int, int], Artwork] = {}
        # The models shared with other harmonizers and looks: the defaults changed in the dashboard,
        # the painted look, an artwork's painted strength, a re-run.
        self._other_compositors: dict[Harmonization, Compositor] = {}
        # Artworks' styles for the painted look, computed once per artwork and reference region;
        # their reference regions described for colour and light, shared by every harmonizer here
        # (a booth's choice readies them for the dashboard's defaults as for the settings').
        self._styles = BoundedCache(settings.stylize_style_cache_size)
        self._references = reference_cache(settings)

    @functools.cached_property
    def compositor(self) -> Compositor:
        """The realistic look as the settings say. Loaded on first use, so a bad photo or artwork
        is refused before seconds of model loading."""
        return build_compositor(self.settings, references=self._references)

    @functools.cached_property
    def painted_stage(self) -> PaintedStage:
        """The painted look's stage: the stylization networks, loaded once, and the style cache."""
        from kiosk.harmonize import stylize_params

        return PaintedStage(ModelStore(self.settings).stylizer(), self._styles, stylize_params(self.settings))

    def warm_up(self) -> dict[str, float]:
        """Load every model (the stylization networks too) and, unless settings.compose_warm_up is off,
        compose a generated photo in the painted look, which runs every stage of both looks, at a booth's working sizes: the first
        visitor's capture then pays for neither (onnxruntime and torch set up on their first run).
        Returns milliseconds: "models", "dummy_compose" and the dummy's stages."""
        timings = StageTimings()
        with timings.measure("models"):
            self.compositor, self.painted_stage  # noqa: B018 - loading them is the point
        if not self.settings.compose_warm_up:
            return timings.ms
        photo, artwork = _warm_up_scene()
        painted = dataclasses.replace(Harmonization.from_settings(self.settings), look="painted")
        dummy = StageTimings()
        with timings.measure("dummy_compose"):
            composition = self._compositor(painted)(decode_image(photo, max_pixels=self.settings.max_image_pixels), artwork, dummy)
            encode_image(composition.image, ".jpg")
        return timings.ms | {f"dummy_{stage}": ms for stage, ms in (dummy.ms | dummy.beside).items()}

    def prepare(self, source: ArtworkSource, framing: Framing, *, painted: bool) -> int:
        """Ready ``source`` for a booth that chose it, for a visitor in ``framing``: the painting decoded
        and kept, its reference regions described for colour and light and, if it may be ``painted``,
        its style for the painted look computed. Returns how many were computed (0: all were cached)."""
        artwork = self._artwork(source)
        box = artwork.spec.boxes[framing].to_pixels(artwork.width, artwork.height)
        harmonizer = self.compositor.harmonizer
        described = harmonizer.prepare(artwork, box) if harmonizer is not None else 0
        return described + (self.painted_stage.prepare(artwork, box) if painted else 0)

    def compose(
        self,
        photo_bytes: bytes,
        artwork: ArtworkSource,
        *,
        output_suffix: str = ".jpg",
        harmonization: Harmonization | None = None,
        identity: MuseumIdentity | None = None,
    ) -> ComposeResult:
        """Compose with ``harmonization`` (by default as the engine's settings say); with ``identity``,
        the picture encoded carries its credit strip when the identity has it on."""
        timings = StageTimings()
        with timings.measure("decode"):
            photo = shrunk_to(decode_image(photo_bytes, max_pixels=self.settings.max_image_pixels), self.settings.photo_max_long_side)
        with timings.measure("artwork"):
            loaded = self._artwork(artwork)
        with timings.measure("models"):
            compositor = self._compositor(harmonization)  # about 0 ms once loaded
        composition = compositor(photo, loaded, timings)
        image = composition.image
        if identity is not None and identity.credit_strip:
            with timings.measure("credit_strip"):
                image = identity.credited(image, loaded.spec)
        with timings.measure("encode"):
            encoded = encode_image(image, output_suffix)
        return ComposeResult(composition=composition, artwork=loaded, encoded=encoded, image=image)

    def _compositor(self, harmonization: Harmonization | None) -> Compositor:
        default = dataclasses.replace(Harmonization.from_settings(self.settings), look="realistic")
        if harmonization is None:
            harmonization = Harmonization.from_settings(self.settings)
        if harmonization.look == "realistic":  # the painted strength means nothing to it: one compositor
            harmonization = dataclasses.replace(harmonization, stylize_strength=default.stylize_strength)
        if harmonization == default:
            return self.compositor
        compositor = self._other_compositors.get(harmonization)
        if compositor is None:
            if _colour_and_light(harmonization) == _colour_and_light(default):
                harmonizer = self.compositor.harmonizer
            else:
                settings = harmonization.applied_to(self.settings)
                harmonizer = load_harmonizer(settings, references=self._references) if settings.harmonize else None
            painted = None
            if harmonization.look == "painted":
                painted = self.painted_stage.with_strength(harmonization.stylize_strength)
            compositor = self.compositor.with_harmonizer(harmonizer, painted)
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


def _colour_and_light(harmonization: Harmonization) -> tuple[bool, str, float]:
    return harmonization.enabled, harmonization.targets, harmonization.strength


def _warm_up_scene() -> tuple[bytes, Artwork]:
    """A JPEG booth photo with a face (the astronaut, the try-it sample, cropped to 16:9 from the
    top, where her face is) and a generated painting-like artwork, both at the working sizes."""
    import cv2
    import skimage.data

    portrait = skimage.data.astronaut()
    width, height = WARM_UP_PHOTO_SIZE
    crop_h = round(portrait.shape[1] * height / width)
    photo = cv2.resize(portrait[:crop_h], WARM_UP_PHOTO_SIZE, interpolation=cv2.INTER_AREA)
    width, height = WARM_UP_ARTWORK_SIZE
    rng = np.random.default_rng(11)
    strokes = cv2.resize(rng.integers(40, 220, (height // 24, width // 24, 3), dtype=np.uint8), WARM_UP_ARTWORK_SIZE)
    painting = cv2.GaussianBlur(strokes, (0, 0), 3)
    spec = ArtworkSpec(
        id="warm-up",
        title="warm-up",
        artist="",
        year="",
        boxes={framing: NormBox(0.3, 0.3, 0.7, 1.0) for framing in Framing},
    )
    return encode_image(photo, ".jpg"), Artwork(spec=spec, image=painting)

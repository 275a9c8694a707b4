"""The harmonize stage: several candidate corrections, each scored; the best one is kept.

Candidates differ in strength and in the reference region they match. Each is fitted and
scored on a reduced copy of the subject in its surroundings; only the winner is applied at
full resolution, then given the paint's texture and a clean edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

import cv2
import numpy as np

from pipeline.face_regions import face_core
from pipeline.harmonize.boundary import decontaminate_edge
from pipeline.harmonize.fit import TargetProvider, fit_operators
from pipeline.harmonize.operators import IDENTITY, OperatorParams, apply
from pipeline.harmonize.palette import PaletteGuard, guard_palette, mean_chroma
from pipeline.harmonize.reference import reference_weights
from pipeline.harmonize.stats import RegionStats, downsample_for_stats, region_stats
from pipeline.harmonize.texture import TextureMatch, match_texture
from pipeline.parallel import in_two_threads
from pipeline.types import Artwork, BoundedCache, Face, Placement, ReferenceMode

# Candidates are fitted and scored on a copy of the subject and its surroundings this small.
SCORING_PIXELS = 160_000
# The gentle candidate's share of the default strength.
GENTLE_SHARE = 0.7
# Another candidate replaces the default only when it scores this much higher: smaller
# differences are within the score's noise, and on the benchmark following them cost more
# than it gained (selection gain 1.004 at 0, 0.985 at 0.02; bench/harmonization.py).
SWITCH_MARGIN = 0.02
# The scored crop reaches this share of the subject's size beyond it: the boundary cue needs context.
SCORING_MARGIN = 0.15


class Scorer(Protocol):
    def describe_reference(self, image: np.ndarray, weights: np.ndarray) -> object: ...
    def __call__(self, composite: np.ndarray, alpha: np.ndarray, reference: object) -> float: ...


@dataclass(frozen=True)
class Variant:
    name: str
    targets: str  # which target provider: "learned" or "fitted"
    reference: ReferenceMode
    strength: float


@dataclass(frozen=True)
class ScoredVariant:
    variant: Variant
    params: OperatorParams
    score: float

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.variant.name,
            "targets": self.variant.targets,
            "reference": self.variant.reference.value,
            "strength": self.variant.strength,
            "operators": self.params.as_dict(),
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class Harmonized:
    foreground: np.ndarray  # the subject's layer, harmonized, textured and with a clean edge
    chosen: ScoredVariant
    candidates: list[ScoredVariant]
    texture: TextureMatch
    reference: Reference  # the artwork's reference region, described: what later stages score against


def standard_variants(default_targets: str, default_reference: ReferenceMode, strength: float) -> list[Variant]:
    """The default correction first; then a gentler one; the classic match to another region at
    half strength (the safest correction where the learned model is out of its depth); none."""
    other = ReferenceMode.RING if default_reference is not ReferenceMode.RING else ReferenceMode.ARTWORK
    return [
        Variant("default", default_targets, default_reference, strength),
        Variant("gentle", default_targets, default_reference, strength * GENTLE_SHARE),
        Variant(f"matched-{other.value}", "fitted", other, strength / 2),
        Variant("untouched", default_targets, default_reference, 0.0),
    ]


@dataclass(frozen=True)
class Reference:
    """A reference region, described once: what the fitter matches and what the scorer compares with."""

    stats: RegionStats
    features: object
    chroma: float  # mean CIELAB chroma: how colourful the paint is, the floor below which the subject is not greyed


class Harmonizer:
    def __init__(
        self,
        targets: Mapping[str, TargetProvider],
        scorer: Scorer,
        *,
        default_targets: str,
        strength: float = 1.0,
        palette_guard: PaletteGuard | None = None,
        references: BoundedCache[Reference],
    ) -> None:
        self._targets = targets
        self._scorer = scorer
        self.default_targets = default_targets
        self.strength = strength
        # None: fitted operators are used as they come (no skin-hue or chroma floor).
        self.palette_guard = palette_guard
        # The artworks' reference regions, described (about 40 ms each at 1920x1080): a booth
        # captures into the same few artworks and boxes all day.
        self._references = references

    def describe(self, image: np.ndarray, weights: np.ndarray) -> Reference:
        small_image, small_weights = downsample_for_stats(image, weights)
        return Reference(
            region_stats(small_image, small_weights),
            self._scorer.describe_reference(image, weights),
            mean_chroma(small_image, small_weights),
        )

    def reference(self, artwork: Artwork, box: tuple[int, int, int, int], mode: ReferenceMode) -> Reference:
        """The artwork's reference region for a subject placed at ``box``, described once."""
        return self._references.get(
            _reference_key(artwork, box, mode), lambda: self.describe(artwork.image, reference_weights(artwork, box, mode))
        )

    def paint_chroma(self, artwork: Artwork, box: tuple[int, int, int, int]) -> float:
        """How colourful the painting is around a subject at ``box``: the larger of the whole artwork's
        and its reference region's mean chroma (the floor a face may be muted to, never below)."""
        modes = {ReferenceMode.ARTWORK, artwork.spec.reference_mode}
        return max(self.reference(artwork, box, mode).chroma for mode in modes)

    def prepare(self, artwork: Artwork, box: tuple[int, int, int, int]) -> int:
        """Describe the artwork's reference regions for a subject placed at ``box`` now (a booth chose
        it: the visitor's capture then finds them). Returns how many were described rather than found."""
        modes = {variant.reference for variant in standard_variants(self.default_targets, artwork.spec.reference_mode, self.strength)}
        modes.add(ReferenceMode.ARTWORK)  # paint_chroma's
        described = 0
        for mode in sorted(modes):
            described += _reference_key(artwork, box, mode) not in self._references
            self.reference(artwork, box, mode)
        return described

    def score(self, composite: np.ndarray, alpha: np.ndarray, reference: Reference) -> float:
        """Harmony in [0, 1] of the foreground ``alpha`` marks in ``composite`` with ``reference``."""
        return float(self._scorer(composite, alpha, reference.features))

    def candidates(
        self,
        background: np.ndarray,
        foreground: np.ndarray,
        alpha: np.ndarray,
        references: Mapping[ReferenceMode, Reference],
        variants: Sequence[Variant],
        faces: np.ndarray | None = None,
    ) -> list[ScoredVariant]:
        """Fit and score each variant on a (reduced) subject layer over its background, both RGB uint8.

        ``faces``: the skin of the subject's faces on the same pixels (``face_core``), None if none."""
        fg = foreground.astype(np.float32) / 255.0
        current = region_stats(foreground, alpha)
        a = alpha[..., None]

        def fitted_and_scored(variant: Variant) -> ScoredVariant:
            reference = references[variant.reference]
            if variant.strength == 0.0:
                params = IDENTITY
            else:
                target = self._targets[variant.targets](current, reference.stats)
                params = fit_operators(fg, alpha, target, strength=variant.strength)
                if self.palette_guard is not None:
                    params = guard_palette(params, fg, alpha, reference.chroma, self.palette_guard, faces)
            composite = np.clip(np.rint(a * apply(fg, params) * 255.0 + (1.0 - a) * background), 0, 255)
            return ScoredVariant(variant, params, self.score(composite.astype(np.uint8), alpha, reference))

        return in_two_threads(fitted_and_scored, variants)

    def score_layer(
        self, artwork: Artwork, placement: Placement, foreground: np.ndarray, alpha: np.ndarray, reference: Reference
    ) -> float:
        """Harmony in [0, 1] of a finished subject layer (sized and placed as ``placement.rect``) in
        the artwork, scored as the candidates are (on the same reduced crop): how later stages, e.g.
        the painted look's variants, are compared with each other and with the colour-and-light result."""
        crop = _Crop.around(placement, artwork)
        background, layer, layer_alpha = crop.reduced(artwork.image, foreground, alpha)
        a = layer_alpha[..., None]
        composite = np.clip(np.rint(a * layer + (1.0 - a) * background), 0, 255).astype(np.uint8)
        return self.score(composite, layer_alpha, reference)

    def __call__(
        self,
        artwork: Artwork,
        placement: Placement,
        foreground: np.ndarray,
        alpha: np.ndarray,
        faces: Sequence[Face] = (),
    ) -> Harmonized:
        """Harmonize the subject layer (RGB uint8 and alpha, sized and placed as ``placement.rect``).

        ``faces``: the subject's faces in the layer's pixels (MTCNN's, moved and scaled with the subject)."""
        variants = standard_variants(self.default_targets, artwork.spec.reference_mode, self.strength)
        references = {variant.reference: self.reference(artwork, placement.box, variant.reference) for variant in variants}
        crop = _Crop.around(placement, artwork)
        background, small_foreground, small_alpha = crop.reduced(artwork.image, foreground, alpha)
        # The faces' skin, reduced as the layer is: the palette guard holds these pixels first.
        small_faces = crop.reduced(artwork.image, foreground, face_core(alpha.shape, faces))[2] if faces else None
        candidates = self.candidates(background, small_foreground, small_alpha, references, variants, small_faces)
        chosen = choose(candidates)
        layer = foreground if chosen.params == IDENTITY else _to_uint8(apply(foreground, chosen.params))
        # Texture is matched to the paint around the subject.
        ring = reference_weights(artwork, placement.box, ReferenceMode.RING)
        layer, texture = match_texture(layer, alpha, artwork.image, ring, faces)
        layer = decontaminate_edge(layer, alpha)
        return Harmonized(
            foreground=layer,
            chosen=chosen,
            candidates=candidates,
            texture=texture,
            reference=references[artwork.spec.reference_mode],
        )


def _reference_key(artwork: Artwork, box: tuple[int, int, int, int], mode: ReferenceMode) -> tuple[object, ...]:
    """What a reference region depends on: the image, the mode and the box (ring) or staff's region."""
    region = box if mode is ReferenceMode.RING else artwork.spec.reference_region if mode is ReferenceMode.REGION else None
    return (artwork.identity, mode.value, region)


def choose(candidates: Sequence[ScoredVariant]) -> ScoredVariant:
    """The best-scoring candidate, or the default (the first) unless another is clearly better."""
    best = max(candidates, key=lambda c: c.score)
    return best if best.score > candidates[0].score + SWITCH_MARGIN else candidates[0]


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class _Crop:
    """The subject's rect plus a margin, clipped to the artwork, and the scale that reduces it."""

    box: tuple[int, int, int, int]
    rect: tuple[int, int, int, int]
    scale: float

    @classmethod
    def around(cls, placement: Placement, artwork: Artwork) -> _Crop:
        x0, y0, x1, y1 = placement.rect
        mx, my = round((x1 - x0) * SCORING_MARGIN), round((y1 - y0) * SCORING_MARGIN)
        box = (max(x0 - mx, 0), max(y0 - my, 0), min(x1 + mx, artwork.width), min(y1 + my, artwork.height))
        area = (box[2] - box[0]) * (box[3] - box[1])
        return cls(box=box, rect=placement.rect, scale=min(1.0, (SCORING_PIXELS / area) ** 0.5))

    def reduced(
        self, artwork: np.ndarray, foreground: np.ndarray, alpha: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The artwork crop, and the subject layer placed on a canvas of the crop's size, all reduced."""
        bx0, by0, bx1, by1 = self.box
        canvas_fg = np.zeros((by1 - by0, bx1 - bx0, 3), np.uint8)
        canvas_alpha = np.zeros((by1 - by0, bx1 - bx0), np.float32)
        rx0, ry0, rx1, ry1 = self.rect
        # The rect may reach past the artwork's edges; paste only what lies inside the crop.
        x0, y0, x1, y1 = max(rx0, bx0), max(ry0, by0), min(rx1, bx1), min(ry1, by1)
        canvas_fg[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0] = foreground[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0]
        canvas_alpha[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0] = alpha[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0]
        size = (max(1, round((bx1 - bx0) * self.scale)), max(1, round((by1 - by0) * self.scale)))

        def shrink(image: np.ndarray) -> np.ndarray:
            return cv2.resize(image, size, interpolation=cv2.INTER_AREA) if self.scale < 1.0 else image

        return shrink(artwork[by0:by1, bx0:bx1]), shrink(canvas_fg), shrink(canvas_alpha)

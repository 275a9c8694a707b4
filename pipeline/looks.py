"""The painted look's stage: the subject layer, after colour and light, repainted in the artwork's
style (pipeline/stylize.py), in a few variants scored as the colour-and-light candidates are, the
best kept.

The capture pipeline (pipeline/compose.py) and `artbooth harmonize` (kiosk/harmonize.py) both run
it on a subject layer placed at a rect over a background image:

    stage = PaintedStage(network, BoundedCache(16), StylizeParams(strength=0.8))
    style, ready = stage.artwork_style(artwork, placement.box)  # cached per artwork and reference region
    painted = stage(artwork.image, placement.rect, layer, alpha, faces, style, score=..., style_ready=ready)
    painted.foreground                                   # the repainted layer, blended like any other

Variants are cheap: the transform runs once, at the chosen strength, and the variants are blends
of its repainting into the layer (``PAINTED_BLENDS``): the full repainting (the default, kept unless
another scores clearly higher, the colour-and-light switch-margin rule), and lighter ones.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.harmonize.harmonizer import choose
from pipeline.harmonize.reference import reference_weights
from pipeline.parallel import in_two_threads
from pipeline.placement import composite_layer
from pipeline.stylize import (
    CONTEXT_MARGIN,
    PaintingStyle,
    StyleNetwork,
    Stylized,
    StylizeParams,
    painting_style,
    stylize,
)
from pipeline.types import Artwork, BoundedCache, Face, ReferenceMode, StageTimings

# The variants: shares of the repainting blended into the layer, the default (full) first.
PAINTED_BLENDS = (1.0, 0.7, 0.4)


@dataclass(frozen=True)
class PaintedVariant:
    name: str
    blend: float  # share of the repainting kept: 1 is the stylization at the chosen strength
    score: float | None  # harmony in [0, 1]; None when nothing scores (harmonization off)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "blend": self.blend, "score": None if self.score is None else round(self.score, 4)}


@dataclass(frozen=True)
class Painted:
    foreground: np.ndarray  # the subject layer repainted as the chosen variant, RGB uint8
    chosen: PaintedVariant
    candidates: list[PaintedVariant]
    stylized: Stylized  # the transform's run (strength, working size) over the subject's window
    style: PaintingStyle
    style_ready: bool  # the artwork's style was cached (prepared when the booth chose it), not computed for this photo

    def as_dict(self) -> dict[str, object]:
        return {
            "strength": self.stylized.strength,
            "working_size": list(self.stylized.working_size),
            "working_scale": round(self.stylized.working_scale, 4),
            "stroke_px": round(self.style.stroke_px, 2),
            "chosen": self.chosen.name,
            "style_ready": self.style_ready,
        }


def variant_name(blend: float) -> str:
    return "painted" if blend == 1.0 else f"painted-{blend:g}"


def faces_moved(faces: Sequence[Face], from_box: tuple[int, int, int, int], to_size: tuple[int, int]) -> list[Face]:
    """``faces`` in the pixels of ``from_box`` (x0, y0, x1, y1) of their image, moved and scaled into
    a layer of ``to_size`` (width, height) made from that box (the subject layer)."""
    x0, y0, x1, y1 = from_box
    kx, ky = to_size[0] / max(x1 - x0, 1), to_size[1] / max(y1 - y0, 1)
    moved = []
    for face in faces:
        fx0, fy0, fx1, fy1 = face.box
        landmarks = (np.asarray(face.landmarks, np.float64) - (x0, y0)) * (kx, ky)
        box = ((fx0 - x0) * kx, (fy0 - y0) * ky, (fx1 - x0) * kx, (fy1 - y0) * ky)
        moved.append(Face(box=box, probability=face.probability, landmarks=landmarks))
    return moved


class PaintedStage:
    """The stylization networks (loaded once), a bounded cache of artwork styles, and the strength."""

    def __init__(
        self,
        network: StyleNetwork,
        styles: BoundedCache[PaintingStyle],
        params: StylizeParams,
        blends: Sequence[float] = PAINTED_BLENDS,
    ) -> None:
        self.network = network
        self.styles = styles
        self.params = params
        self.blends = tuple(blends)

    def with_strength(self, strength: float) -> PaintedStage:
        """The same networks and cache at another strength."""
        return PaintedStage(self.network, self.styles, dataclasses.replace(self.params, strength=strength), self.blends)

    def style(self, key: Hashable, image: np.ndarray, weights: Callable[[], np.ndarray]) -> PaintingStyle:
        """The style of the paint ``weights()`` marks over ``image``, computed once per ``key``."""
        return self.styles.get(key, lambda: painting_style(self.network, image, weights()))

    def artwork_style(self, artwork: Artwork, box: tuple[int, int, int, int]) -> tuple[PaintingStyle, bool]:
        """The artwork's style from its reference region: the region staff drew when the artwork is
        matched to it, else the paint around the placement ``box`` (the light and strokes the visitor
        stands in). Cached per artwork image and region; also says whether it was ready (cached,
        e.g. prepared when a booth chose the artwork) rather than computed now."""
        mode = ReferenceMode.REGION if artwork.spec.reference_mode is ReferenceMode.REGION else ReferenceMode.RING
        region = artwork.spec.reference_region if mode is ReferenceMode.REGION else box
        key = (artwork.spec.id, artwork.identity, mode.value, region)
        ready = key in self.styles
        return self.style(key, artwork.image, lambda: reference_weights(artwork, box, mode)), ready

    def prepare(self, artwork: Artwork, box: tuple[int, int, int, int]) -> int:
        """Compute the artwork's style for a subject placed at ``box`` now (a booth chose it: the
        visitor's capture then finds it cached). Returns 1 if it was computed, 0 if found."""
        return int(not self.artwork_style(artwork, box)[1])

    def __call__(
        self,
        background: np.ndarray,
        rect: tuple[int, int, int, int],
        layer: np.ndarray,
        alpha: np.ndarray,
        faces: Sequence[Face],
        style: PaintingStyle,
        score: Callable[[np.ndarray], float] | None = None,
        timings: StageTimings | None = None,
        style_ready: bool = False,
    ) -> Painted:
        """Repaint ``layer`` (RGB uint8, with ``alpha``, to be blended over ``background`` at ``rect``).

        ``faces`` are in the layer's pixels. ``score`` rates a finished layer (harmony in [0, 1]);
        without it the default variant is kept unscored. ``style_ready`` is reported (see
        ``artwork_style``). ``timings`` gets "stylize" (the transform
        and its blend) and "painted_variants" (blending and scoring the variants). Only the layer
        changes: blending the result over ``background`` leaves every pixel the alpha does not touch.
        """
        timings = timings if timings is not None else StageTimings()
        with timings.measure("stylize"):
            change, stylized = self._repainting(background, rect, layer, alpha, faces, style)
        with timings.measure("painted_variants"):
            base = layer.astype(np.float32)

            def blended(blend: float) -> np.ndarray:
                return np.clip(np.rint(base + blend * change), 0, 255).astype(np.uint8)

            layers = {blend: blended(blend) for blend in self.blends}
            scores = [None] * len(self.blends) if score is None else in_two_threads(score, layers.values())
            candidates = [
                PaintedVariant(variant_name(blend), blend, None if rating is None else float(rating))
                for blend, rating in zip(self.blends, scores)
            ]
            chosen = candidates[0] if score is None else choose(candidates)
        return Painted(
            foreground=layers[chosen.blend],
            chosen=chosen,
            candidates=candidates,
            stylized=stylized,
            style=style,
            style_ready=style_ready,
        )

    def _repainting(
        self,
        background: np.ndarray,
        rect: tuple[int, int, int, int],
        layer: np.ndarray,
        alpha: np.ndarray,
        faces: Sequence[Face],
        style: PaintingStyle,
    ) -> tuple[np.ndarray, Stylized]:
        """The stylization's change to the layer (float32, the layer's shape), and the run itself."""
        height, width = background.shape[:2]
        rx0, ry0, rx1, ry1 = rect
        # The transform sees the subject with the paint around it, as stylize() crops it.
        mx = math.ceil((rx1 - rx0) * CONTEXT_MARGIN) + 1
        my = math.ceil((ry1 - ry0) * CONTEXT_MARGIN) + 1
        wx0, wy0, wx1, wy1 = max(rx0 - mx, 0), max(ry0 - my, 0), min(rx1 + mx, width), min(ry1 + my, height)
        local = (rx0 - wx0, ry0 - wy0, rx1 - wx0, ry1 - wy0)
        before = composite_layer(background[wy0:wy1, wx0:wx1], layer, alpha, local)
        # The part of the layer inside the window (the rect may reach past the background's edges).
        lx0, ly0 = max(-local[0], 0), max(-local[1], 0)
        lx1 = min(rx1 - rx0, (wx1 - wx0) - local[0])
        ly1 = min(ry1 - ry0, (wy1 - wy0) - local[1])
        inside = (slice(ly0, ly1), slice(lx0, lx1))
        window = (slice(ly0 + local[1], ly1 + local[1]), slice(lx0 + local[0], lx1 + local[0]))
        window_alpha = np.zeros(before.shape[:2], np.float32)
        window_alpha[window] = alpha[inside]
        size = (rx1 - rx0, ry1 - ry0)
        window_faces = faces_moved(faces, (-local[0], -local[1], size[0] - local[0], size[1] - local[1]), size)
        stylized = stylize(self.network, before, window_alpha, window_faces, style, self.params)

        # stylize() moved each composite pixel by alpha times the repainting; as a change of the layer
        # it is that move divided by the alpha (where the alpha is 0 the layer does not show).
        change = np.zeros(layer.shape, np.float32)
        a = alpha[inside][..., None]
        moved = stylized.image[window].astype(np.float32) - before[window].astype(np.float32)
        change[inside] = np.where(a > 0, moved / np.maximum(a, 1e-6), 0.0)
        return change, stylized

"""The painterly stage: the visitor takes on the painting's palette and brushwork, and stays recognisable.

It runs Magenta's arbitrary image stylization networks (Ghiasi et al. 2017): a predictor turns a
256x256 picture of the paint into a 100-number style vector, and a fully convolutional transform
repaints a content image with a style vector. Around them:

* **The painting's style** comes from its reference region (by default the paint around the
  placement box): a few square tiles of it, the tiles' uncovered corners inpainted, their vectors
  averaged. It is computed once per artwork; the caller keeps it in a ``BoundedCache``.
* **Strength** interpolates between the subject's own style vector and the painting's (the
  published control). At low strengths the repainted layer also fades towards the input, so
  strength 0 is the identity, bit for bit.
* **Faces** (MTCNN boxes) keep their own colours and take only part of the repainted luminance
  (``face_protection``), through a soft ellipse per face, so the visitor stays recognisable and
  the skin keeps the hue colour-and-light gave it.
* **Light and shade stay the subject's**: the transform lifts dark hair and clothes toward the
  paint's mean lightness; luminance changes broader than a few strokes are mostly dropped
  (``TONE_KEEP``), so the strokes and the palette come through and the darks stay dark.
* **Only the subject changes**: the result is written where the alpha is above 0; every other
  pixel of the composite is returned untouched.

Working size (the rule). The transform paints strokes of a size fixed in its own pixels; the
predictor sees the painting's strokes at the scale of the tiles it is given. So one scale ``k``
(working pixels per composite pixel) governs both, and is chosen from the painting, not the photo:

1. measure the painting's stroke length ``stroke_px`` in its own pixels (``stroke_length``: the
   half-width of the autocorrelation of its band-passed luminance in the reference region);
2. ``k_paint = STROKE_TARGET_PX / stroke_px``: the scale at which those strokes are
   ``STROKE_TARGET_PX`` working pixels long, the size the networks render well;
3. the predictor's tiles are ``STYLE_INPUT_SIDE / k_paint`` painting pixels wide, so the style
   vector describes strokes at the same scale as the content is painted (clamped to the region);
4. the subject is transformed at ``k = k_paint`` clamped by the subject: at most 1 (never above the
   composite's own resolution) and at most ``max_working_pixels`` working pixels (time), but its
   long side at least ``min_working_side`` (below that faces lose their features).

Only the subject's crop (its alpha's box plus a margin of context) is transformed, at that scale,
and scaled back to the composite's pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from pipeline.blur import wide_blur
from pipeline.face_regions import face_mask
from pipeline.types import Face

# The predictor's input side, fixed by the network.
STYLE_INPUT_SIDE = 256
# The transform halves the size twice and doubles it back: inputs are padded to a multiple of this.
TRANSFORM_MULTIPLE = 4
# Stroke length (in working pixels) the networks reproduce well: Magenta trained on 256-px styles.
STROKE_TARGET_PX = 4.0
# Longest stroke measured, in painting pixels (autocorrelation radii searched).
MAX_STROKE_PX = 48
# Band-pass of the stroke measure: structure larger than this (composition, sky vs ground) is not a stroke.
STROKE_HIGHPASS_SIGMA = 24.0
# The stroke measure looks at a window of at most this many painting pixels a side.
STROKE_WINDOW_PX = 768
# Style tiles: how many are averaged, the least share of a tile the reference region must cover
# (the rest is inpainted), and the smallest tile tried when the region is thin.
STYLE_TILES = 4
STYLE_TILE_MIN_COVERAGE = 0.75
STYLE_TILE_MIN_SIDE = 64
# Context around the subject's alpha box that the transform sees, as a share of the box's size.
CONTEXT_MARGIN = 0.08
# Luminance changes broader than this many strokes are the transform's tone, not brushwork: that
# share of them is dropped, so the subject keeps its own light and shade (dark hair stays dark).
TONE_SCALE_STROKES = 3.0
TONE_KEEP = 0.6
# Below this strength the repainted layer fades towards the input too, so 0 is exactly the input.
STRENGTH_FADE = 0.25


class StyleNetwork(Protocol):
    """The two networks; ``kiosk.models.ModelStore.stylizer`` loads the real ones."""

    def predict(self, style_image: np.ndarray) -> np.ndarray:
        """(256, 256, 3) float32 RGB in [0, 1] -> (100,) float32 style vector."""
        ...

    def transform(self, content: np.ndarray, style: np.ndarray) -> np.ndarray:
        """(H, W, 3) float32 RGB in [0, 1], H and W multiples of 4, and a style vector ->
        (H, W, 3) float32 in [0, 1]."""
        ...


class OnnxStyleNetwork:
    """The networks as onnxruntime sessions (the transform's input size made free at load)."""

    def __init__(self, predict_session, transform_session) -> None:
        self._predict = predict_session
        self._transform = transform_session
        self._predict_input = predict_session.get_inputs()[0].name
        self._content_input, self._style_input = (i.name for i in transform_session.get_inputs())

    def predict(self, style_image: np.ndarray) -> np.ndarray:
        (vector,) = self._predict.run(None, {self._predict_input: style_image[None].astype(np.float32)})
        return vector.reshape(-1)

    def transform(self, content: np.ndarray, style: np.ndarray) -> np.ndarray:
        feed = {
            self._content_input: np.ascontiguousarray(content[None], dtype=np.float32),
            self._style_input: style.reshape(1, 1, 1, -1).astype(np.float32),
        }
        (out,) = self._transform.run(None, feed)
        return out[0]


@dataclass(frozen=True)
class StylizeParams:
    strength: float = 0.8  # 0: the input unchanged; 1: the painting's style vector
    face_protection: float = 0.6  # share of the repainted luminance faces do not take (they keep their colours)
    min_working_side: int = 384  # the subject's crop is transformed with at least this long side
    max_working_pixels: int = 360_000  # ... and at most this many pixels

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in 0..1, not {self.strength}")
        if not 0.0 <= self.face_protection <= 1.0:
            raise ValueError(f"face_protection must be in 0..1, not {self.face_protection}")
        if self.min_working_side < 32 or self.max_working_pixels < self.min_working_side**2:
            raise ValueError("min_working_side must be at least 32 and max_working_pixels large enough for it")


@dataclass(frozen=True)
class PaintingStyle:
    """A painting's style, as the stage needs it; cache it per artwork (``pipeline.types.BoundedCache``)."""

    vector: np.ndarray  # (100,) float32
    stroke_px: float  # measured stroke length, painting pixels
    tile_side: int  # side of the square tiles the vector was predicted from, painting pixels
    tiles: int  # how many tiles were averaged

    @property
    def preferred_scale(self) -> float:
        """Working pixels per painting pixel that bring the strokes to STROKE_TARGET_PX."""
        return STROKE_TARGET_PX / self.stroke_px


@dataclass(frozen=True)
class Stylized:
    image: np.ndarray  # the composite, repainted inside the subject's alpha
    working_scale: float  # working pixels per composite pixel (1.0 when nothing ran)
    working_size: tuple[int, int]  # (width, height) the transform ran at; (0, 0) when nothing ran
    strength: float


def stroke_length(painting: np.ndarray, weights: np.ndarray) -> float:
    """The painting's characteristic stroke length in its pixels, within the reference ``weights``.

    The radius at which the autocorrelation of the band-passed luminance falls to one half:
    fine hatching gives a few pixels, broad flat strokes tens.
    """
    ys, xs = np.nonzero(weights > 0.5)
    if len(ys) == 0:
        ys, xs = np.nonzero(np.ones(weights.shape, bool))
    # The window with the most reference in it, around the region's centre, at full resolution:
    # shrinking would erase the finest strokes.
    side = min(STROKE_WINDOW_PX, painting.shape[0], painting.shape[1])
    cy, cx = int(np.median(ys)), int(np.median(xs))
    y0 = int(np.clip(cy - side // 2, 0, painting.shape[0] - side))
    x0 = int(np.clip(cx - side // 2, 0, painting.shape[1] - side))
    grey = cv2.cvtColor(painting[y0 : y0 + side, x0 : x0 + side], cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    inside = (weights[y0 : y0 + side, x0 : x0 + side] > 0.5).astype(np.float32)
    band = grey - cv2.GaussianBlur(grey, (0, 0), STROKE_HIGHPASS_SIGMA)
    window = np.outer(np.hanning(side), np.hanning(side)).astype(np.float32) * inside
    # Padding by the longest lag searched keeps the circular correlation from wrapping within it.
    spectrum = np.fft.rfft2(band * window, s=(side + MAX_STROKE_PX + 1, side + MAX_STROKE_PX + 1))
    autocorrelation = np.fft.irfft2(np.abs(spectrum) ** 2)
    if autocorrelation[0, 0] <= 1e-12:
        return float(MAX_STROKE_PX)  # flat paint: no strokes to match, the coarsest scale
    autocorrelation /= autocorrelation[0, 0]
    radii = np.arange(1, MAX_STROKE_PX + 1)
    profile = (
        autocorrelation[0, radii] + autocorrelation[radii, 0] + autocorrelation[0, -radii] + autocorrelation[-radii, 0]
    ) / 4.0
    below = np.nonzero(profile < 0.5)[0]
    if len(below) == 0:
        return float(MAX_STROKE_PX)
    i = int(below[0])
    before = 1.0 if i == 0 else float(profile[i - 1])
    return float(max(1.0, radii[i] - 1 + (before - 0.5) / max(before - float(profile[i]), 1e-6)))


def painting_style(network: StyleNetwork, painting: np.ndarray, weights: np.ndarray) -> PaintingStyle:
    """The style vector of the paint that ``weights`` (0/1 over ``painting``) marks, and its stroke scale."""
    stroke = stroke_length(painting, weights)
    side = round(STYLE_INPUT_SIDE * stroke / STROKE_TARGET_PX)
    tiles, side = _style_tiles(painting, weights, side)
    vectors = [network.predict(tile) for tile, _ in tiles]
    coverage = np.array([c for _, c in tiles], np.float32)
    vector = (np.stack(vectors) * coverage[:, None]).sum(axis=0) / coverage.sum()
    return PaintingStyle(vector=vector.astype(np.float32), stroke_px=stroke, tile_side=side, tiles=len(tiles))


def _style_tiles(painting: np.ndarray, weights: np.ndarray, side: int) -> tuple[list[tuple[np.ndarray, float]], int]:
    """Up to STYLE_TILES square tiles of the reference region, each resized to the predictor's input,
    with the share of it the region covers (the rest inpainted from the paint around it); and the
    tiles' side in painting pixels (smaller than asked where the region is thin)."""
    height, width = weights.shape
    side = int(np.clip(side, STYLE_TILE_MIN_SIDE, min(height, width)))
    integral = cv2.integral((weights > 0.5).astype(np.uint8)).astype(np.float64)
    while True:
        stride = max(1, side // 3)
        ys = np.arange(0, height - side + 1, stride)
        xs = np.arange(0, width - side + 1, stride)
        y0, x0 = np.meshgrid(ys, xs, indexing="ij")
        covered = (
            integral[y0 + side, x0 + side] - integral[y0, x0 + side] - integral[y0 + side, x0] + integral[y0, x0]
        ) / float(side * side)
        if covered.max() >= STYLE_TILE_MIN_COVERAGE or side <= STYLE_TILE_MIN_SIDE:
            break
        side = max(STYLE_TILE_MIN_SIDE, side // 2)
    order = np.argsort(covered, axis=None)[::-1]
    chosen: list[tuple[int, int, float]] = []
    for flat in order:
        cov = float(covered.flat[flat])
        if chosen and cov < STYLE_TILE_MIN_COVERAGE:
            break
        ty, tx = int(y0.flat[flat]), int(x0.flat[flat])
        # Tiles may overlap by at most half a side: the vectors should see different paint.
        if all(abs(ty - cy) >= side // 2 or abs(tx - cx) >= side // 2 for cy, cx, _ in chosen):
            chosen.append((ty, tx, cov))
        if len(chosen) == STYLE_TILES:
            break
    tiles = []
    for ty, tx, cov in chosen:
        tile = cv2.resize(
            painting[ty : ty + side, tx : tx + side], (STYLE_INPUT_SIDE, STYLE_INPUT_SIDE), interpolation=cv2.INTER_AREA
        )
        outside = cv2.resize(
            (weights[ty : ty + side, tx : tx + side] <= 0.5).astype(np.uint8),
            (STYLE_INPUT_SIDE, STYLE_INPUT_SIDE),
            interpolation=cv2.INTER_NEAREST,
        )
        if outside.any():
            tile = cv2.inpaint(tile, outside, 5, cv2.INPAINT_TELEA)
        tiles.append((tile.astype(np.float32) / 255.0, max(cov, 1e-3)))
    return tiles, side


def working_scale(style: PaintingStyle, crop_size: tuple[int, int], params: StylizeParams) -> float:
    """Working pixels per composite pixel for a subject crop of (width, height): see the module's rule."""
    width, height = crop_size
    longest = max(width, height)
    by_pixels = (params.max_working_pixels / float(width * height)) ** 0.5
    at_least = params.min_working_side / longest
    scale = min(style.preferred_scale, 1.0, by_pixels)
    return float(max(scale, min(at_least, by_pixels)))


def stylize(
    network: StyleNetwork,
    composite: np.ndarray,
    alpha: np.ndarray,
    faces: Sequence[Face],
    style: PaintingStyle,
    params: StylizeParams,
) -> Stylized:
    """Repaint the subject (``alpha`` over the RGB uint8 ``composite``) in ``style``.

    ``faces`` are in composite pixels. Pixels where ``alpha`` is 0 come back bit for bit; with
    strength 0 the whole image does.
    """
    if composite.shape[:2] != alpha.shape:
        raise ValueError(f"alpha {alpha.shape} does not match the composite {composite.shape[:2]}")
    ys, xs = np.nonzero(alpha > 0)
    if params.strength == 0.0 or len(ys) == 0:
        return Stylized(image=composite.copy(), working_scale=1.0, working_size=(0, 0), strength=params.strength)
    height, width = alpha.shape
    bx0, by0, bx1, by1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    mx, my = round((bx1 - bx0) * CONTEXT_MARGIN), round((by1 - by0) * CONTEXT_MARGIN)
    x0, y0, x1, y1 = max(bx0 - mx, 0), max(by0 - my, 0), min(bx1 + mx, width), min(by1 + my, height)
    crop = composite[y0:y1, x0:x1]
    crop_w, crop_h = x1 - x0, y1 - y0

    scale = working_scale(style, (crop_w, crop_h), params)
    work_w, work_h = max(TRANSFORM_MULTIPLE, round(crop_w * scale)), max(TRANSFORM_MULTIPLE, round(crop_h * scale))
    shrink = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    content = cv2.resize(crop, (work_w, work_h), interpolation=shrink).astype(np.float32) / 255.0

    own = network.predict(_centre_square(content))
    vector = params.strength * style.vector + (1.0 - params.strength) * own
    pad_h, pad_w = (-work_h) % TRANSFORM_MULTIPLE, (-work_w) % TRANSFORM_MULTIPLE
    padded = np.pad(content, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect") if pad_h or pad_w else content
    painted = network.transform(padded, vector.astype(np.float32))[:work_h, :work_w]
    painted = np.clip(cv2.resize(painted, (crop_w, crop_h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)

    weight = alpha[y0:y1, x0:x1].astype(np.float32) * min(1.0, params.strength / STRENGTH_FADE)
    faces_here = face_mask((height, width), faces)[y0:y1, x0:x1]
    luma_weight = weight * (1.0 - params.face_protection * faces_here)
    chroma_weight = weight * (1.0 - faces_here)
    original = crop.astype(np.float32) / 255.0
    base = cv2.cvtColor(original, cv2.COLOR_RGB2YCrCb)
    change = cv2.cvtColor(painted.astype(np.float32), cv2.COLOR_RGB2YCrCb) - base
    # The transform also lifts dark hair and clothes toward the paint's mean lightness, washing
    # them out; colour and light already matched the subject's light to the painting. So the
    # luminance change is kept at the scale of strokes and only partly above it.
    tone_sigma = TONE_SCALE_STROKES * STROKE_TARGET_PX / scale
    change[..., 0] -= TONE_KEEP * wide_blur(change[..., 0], tone_sigma)
    change *= np.stack([luma_weight, chroma_weight, chroma_weight], axis=-1)
    blended = cv2.cvtColor(base + change, cv2.COLOR_YCrCb2RGB)
    blended = np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)

    image = composite.copy()
    np.copyto(image[y0:y1, x0:x1], blended, where=(alpha[y0:y1, x0:x1] > 0)[..., None])
    return Stylized(image=image, working_scale=scale, working_size=(work_w, work_h), strength=params.strength)


def _centre_square(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    side = min(height, width)
    y0, x0 = (height - side) // 2, (width - side) // 2
    square = image[y0 : y0 + side, x0 : x0 + side]
    interpolation = cv2.INTER_AREA if side > STYLE_INPUT_SIDE else cv2.INTER_CUBIC
    return cv2.resize(square, (STYLE_INPUT_SIDE, STYLE_INPUT_SIDE), interpolation=interpolation)

"""Colour and light for paintings without greying the visitor.

The fitter (fit.py) moves the subject's luminance zones (shadow p10, mid-tone mean,
highlight p90) and colour cast toward the reference region's, as in Interactive Portrait
Harmonization. Under a painting's strong cast that goes wrong in two ways a visitor notices
at once: a night scene's blue pulls skin out of skin hues, and a cast that crosses the
subject's own colour (blue over warm skin) cancels it into grey. This stage checks the
fitted operators on the subject's own pixels and pulls them back, in small pure steps:

0. ``keep_highlights``: exposure stops short of clipping the subject's bright pixels to white;
1. ``keep_skin_hue``: the white-balance gains are eased toward neutral (geometrically) until
   the mean hue of the skin-coloured pixels stays within skin hues and turns by no more than
   a few degrees (a gold cast must not turn a face green, a night one not purple);
2. ``keep_chroma``: saturation is raised (darkening in linear light lowers CIELAB chroma with
   it), and where that is not enough the white balance is eased further, until the subject's
   mean chroma, and nearly every skin pixel's chroma along its own hue, is no lower than the
   lower of its own and the painting's: the subject may become as muted as the painting, never
   greyer.

Skin is found by colour (CIELAB hue, chroma and lightness), so hands and necks are kept with
the face; where MTCNN found faces, the skin-coloured pixels in the centre of each face box weigh
``face_skin_weight`` times a skin pixel elsewhere (eyes, brows and lips do not count: they are
not skin), and exposure keeps the face's own bright pixels further from white: the visitor's
face is what must survive the correction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pipeline.harmonize.fit import sample_indices
from pipeline.harmonize.operators import GAMMA, OperatorParams, apply, gamma_power
from pipeline.harmonize.stats import to_lab


@dataclass(frozen=True)
class PaletteGuard:
    """What the guard allows; one object, passed in (the harmonizer's settings for this stage)."""

    # Mean hue of skin after the correction, in CIELAB degrees (atan2(b, a)). People of every
    # skin tone photograph at roughly 40-65 degrees; outside 25-75 skin reads as sick or painted.
    skin_hue_deg: tuple[float, float] = (25.0, 75.0)
    # The most the skin's mean hue may turn: a painting's light tints skin, it does not recolour it.
    max_skin_hue_turn_deg: float = 12.0
    # Saturation may go this far (beyond the fitter's bound) to keep a darkened subject's colour.
    max_saturation: float = 2.0
    # Exposure may raise the subject's bright pixels (this percentile of the brightest linear channel)
    # to this level at most: beyond it they clip toward colourless white.
    bright_percentile: float = 95.0
    max_bright_level: float = 0.92
    # ... and a face's bright pixels to this level: a face brightened toward white loses the shading
    # MTCNN (and a person) recognises it by.
    max_face_bright_level: float = 0.85
    # A pixel of a face MTCNN found counts this many times a skin pixel found by colour alone.
    face_skin_weight: float = 2.0
    # Which pixels count as skin: a generous box around skin colours in CIELAB (beige and brown
    # clothes fall in it too, which does no harm: they are kept warm as well).
    skin_detect_hue_deg: tuple[float, float] = (15.0, 90.0)
    skin_detect_chroma: tuple[float, float] = (6.0, 60.0)
    skin_detect_lightness: tuple[float, float] = (35.0, 95.0)
    # Below this share of the subject, skin statistics are noise: the hue check is skipped.
    min_skin_share: float = 0.01
    # Chroma (CIELAB units) kept above the floor: what the texture stage's softening and the edge
    # clean-up take back afterwards (up to about 1 on faces).
    chroma_headroom: float = 1.0
    # The skin pixels that may keep less of their chroma than the rest: this percentile of the
    # per-pixel share kept must meet the floor (specular highlights and shadow edges may not).
    skin_kept_percentile: float = 10.0


@dataclass(frozen=True)
class _Colour:
    """Mean chroma and hue of a weighted set of Lab pixels."""

    chroma: float
    hue_deg: float


def _measure(lab: np.ndarray, weights: np.ndarray) -> _Colour:
    w = weights.reshape(-1).astype(np.float64)
    total = max(float(w.sum()), 1e-9)
    a, b = lab[..., 1].reshape(-1).astype(np.float64), lab[..., 2].reshape(-1).astype(np.float64)
    chroma = float((np.hypot(a, b) * w).sum() / total)
    hue = float(np.degrees(np.arctan2((b * w).sum() / total, (a * w).sum() / total)))
    return _Colour(chroma, hue)


def _kept_chroma(before: np.ndarray, after: np.ndarray, weights: np.ndarray) -> float:
    """The weighted mean of each pixel's chroma after, along its own hue before.

    A cast that cancels warm skin while tinting neutral pixels blue keeps the plain mean chroma
    but greys the face; measured along each pixel's own colour, that counts as the loss it is."""
    w = weights.reshape(-1).astype(np.float64)
    a0, b0 = before[..., 1].reshape(-1), before[..., 2].reshape(-1)
    a1, b1 = after[..., 1].reshape(-1), after[..., 2].reshape(-1)
    along = (a1 * a0 + b1 * b0) / np.maximum(np.hypot(a0, b0), 1e-3)
    return float((along * w).sum() / max(float(w.sum()), 1e-9))


def mean_chroma(image: np.ndarray, weights: np.ndarray) -> float:
    """The weighted mean CIELAB chroma of ``image`` (RGB uint8 or float [0, 1]): how colourful a region is."""
    return _measure(to_lab(image), weights).chroma


def skin_weights(lab: np.ndarray, guard: PaletteGuard) -> np.ndarray:
    """1 where a Lab pixel has a skin colour, else 0 (float32, the shape of ``lab`` without channels)."""
    a, b = lab[..., 1], lab[..., 2]
    hue = np.degrees(np.arctan2(b, a))
    chroma = np.hypot(a, b)
    inside = (
        (guard.skin_detect_hue_deg[0] <= hue)
        & (hue <= guard.skin_detect_hue_deg[1])
        & (guard.skin_detect_chroma[0] <= chroma)
        & (chroma <= guard.skin_detect_chroma[1])
        & (guard.skin_detect_lightness[0] <= lab[..., 0])
        & (lab[..., 0] <= guard.skin_detect_lightness[1])
    )
    return inside.astype(np.float32)


def keep_highlights(
    params: OperatorParams, foreground: np.ndarray, weights: np.ndarray, guard: PaletteGuard, level: float | None = None
) -> OperatorParams:
    """``params`` with no more exposure than keeps the subject's bright pixels below white.

    Exposure is a gain in linear light: past white a face clips to colourless, and the contrast
    and highlight operators that follow only bring back a grey. Brightening beyond this is left
    to those L-only operators, which keep colour."""
    if params.exposure_ev <= 0.0:
        return params
    linear = gamma_power(foreground.reshape(-1, 3), GAMMA) * np.asarray(params.wb_gains, np.float32)
    bright = float(np.percentile(linear.max(axis=1)[weights.reshape(-1) > 0], guard.bright_percentile))
    limit = float(np.log2((guard.max_bright_level if level is None else level) / max(bright, 1e-4)))
    return dataclasses.replace(params, exposure_ev=max(0.0, min(params.exposure_ev, limit)))


def keep_skin_hue(
    params: OperatorParams, foreground: np.ndarray, skin: np.ndarray, guard: PaletteGuard
) -> OperatorParams:
    """``params`` with white balance eased toward neutral until the skin's mean hue is within skin hues.

    A skin tone photographed outside the range (coloured stage light) may stay where it was,
    but is not pushed further out.
    """
    before = _measure(to_lab(foreground), skin).hue_deg
    low = max(min(guard.skin_hue_deg[0], before), before - guard.max_skin_hue_turn_deg)
    high = min(max(guard.skin_hue_deg[1], before), before + guard.max_skin_hue_turn_deg)
    return _ease_white_balance(
        params, lambda eased: low <= _measure(to_lab(apply(foreground, eased)), skin).hue_deg <= high
    )


def _ease_white_balance(params: OperatorParams, acceptable) -> OperatorParams:
    """``params`` with the largest share of its white-balance gains (geometrically, to 1/256) that
    ``acceptable`` accepts; none of them if no share is acceptable."""

    def eased(share: float) -> OperatorParams:
        return dataclasses.replace(params, wb_gains=tuple(float(g) ** share for g in params.wb_gains))

    if acceptable(params):
        return params
    kept, dropped = 0.0, 1.0  # a share that is acceptable (none always is, by choice), and one that is not
    for _ in range(8):
        middle = (kept + dropped) / 2
        if acceptable(eased(middle)):
            kept = middle
        else:
            dropped = middle
    return eased(kept)


def keep_chroma(
    params: OperatorParams,
    foreground: np.ndarray,
    weights: np.ndarray,
    skin: np.ndarray | None,
    painting_chroma: float,
    guard: PaletteGuard,
) -> OperatorParams:
    """``params`` with saturation raised (to ``max_saturation``), and the cast eased where that is not
    enough, so neither the subject nor its skin ends greyer than the lower of its own chroma and the
    painting's."""
    lab = to_lab(foreground)
    own = _measure(lab, weights).chroma
    floor = min(own, painting_chroma) + guard.chroma_headroom
    if skin is not None:
        # Skin is held pixel by pixel: most skin pixels (all but the least kept share) keep the
        # share of their own chroma the painting allows. A mean would let a cast that tints
        # neutral pixels hide the face it greys.
        skin_chroma = _measure(lab, skin).chroma
        skin_floor = (min(skin_chroma, painting_chroma) + guard.chroma_headroom) / max(skin_chroma, 1e-3)
        chroma = np.hypot(lab[..., 1], lab[..., 2]).reshape(-1)
        coloured = (skin.reshape(-1) > 0) & (chroma >= guard.skin_detect_chroma[0])

    def shortfall(candidate: OperatorParams) -> float:
        after = to_lab(apply(foreground, candidate))
        missing = floor / max(_kept_chroma(lab, after, weights), 1e-3)
        if skin is not None and coloured.any():
            along = (after[..., 1] * lab[..., 1] + after[..., 2] * lab[..., 2]).reshape(-1) / np.maximum(chroma, 1e-3)
            kept = float(np.percentile(along[coloured] / chroma[coloured], guard.skin_kept_percentile))
            missing = max(missing, skin_floor / max(kept, 1e-3))
        return missing

    def saturated(candidate: OperatorParams) -> OperatorParams:
        for _ in range(2):  # once more: out-of-gamut colours clip, so chroma grows less than saturation
            missing = shortfall(candidate)
            if missing <= 1.0 + 1e-3:
                break
            saturation = min(candidate.saturation * missing, guard.max_saturation)
            if saturation <= candidate.saturation:
                break
            candidate = dataclasses.replace(candidate, saturation=float(saturation))
        return candidate

    params = saturated(params)
    if shortfall(params) <= 1.0 + 1e-3:
        return params
    # Saturation alone cannot undo a cast that cancels the subject's own colour: keep less of the cast.
    at_most = dataclasses.replace(params, saturation=guard.max_saturation)
    eased = _ease_white_balance(at_most, lambda candidate: shortfall(candidate) <= 1.0 + 1e-3)
    return saturated(dataclasses.replace(eased, saturation=params.saturation))


def guard_palette(
    params: OperatorParams,
    foreground: np.ndarray,
    weights: np.ndarray,
    painting_chroma: float,
    guard: PaletteGuard,
    faces: np.ndarray | None = None,
) -> OperatorParams:
    """Fitted ``params`` for ``foreground`` (RGB float [0, 1], weighted by ``weights``), with skin kept in
    skin hues and no greying below the painting's own chroma.

    ``faces``: 1 on the skin of faces MTCNN found (``pipeline.face_regions.face_core``), the
    foreground's shape; None where none were found."""
    inside = sample_indices(weights)
    foreground = foreground.reshape(-1, 3)[inside][:, None, :]
    weights = weights.reshape(-1)[inside][:, None]
    face = None if faces is None else faces.reshape(-1)[inside][:, None] * weights
    params = keep_highlights(params, foreground, weights, guard)
    has_face = face is not None and bool((face > 0).any())
    if has_face:
        params = keep_highlights(params, foreground, face, guard, level=guard.max_face_bright_level)
    skin = skin_weights(to_lab(foreground), guard) * weights
    if has_face:
        skin = skin * (1.0 + (guard.face_skin_weight - 1.0) * (face > 0))
    has_skin = float(skin.sum()) >= guard.min_skin_share * float(weights.sum())
    if has_skin:
        params = keep_skin_hue(params, foreground, skin, guard)
    return keep_chroma(params, foreground, weights, skin if has_skin else None, painting_chroma, guard)

"""Choosing operator parameters per composite.

A target appearance for the foreground comes from a `TargetProvider`: the reference
region's own statistics (classic matching, as in Interactive Portrait Harmonization: its
shadow p10, mid-tone mean and highlight p90 luminance, and its Lab chroma mean and spread),
or a learned prediction of what the foreground should look like in that scene. The fitter
moves the foreground `strength` of the way there, caps the chroma shift so a painting's
dominant hue cannot be poured onto a face, and solves for each operator in turn on a small
copy of the foreground, measuring the result after each step.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from pipeline.harmonize.operators import (
    BOUNDS,
    GAMMA,
    LUMA,
    Bounds,
    OperatorParams,
    apply_light,
    highlight_weight,
    shadow_weight,
)
from pipeline.harmonize.stats import RegionStats, from_lab, lab_region_stats, to_lab

# The largest move of the foreground's mean chroma, in CIELAB a/b units. About a tenth of
# the distance from neutral grey to a saturated primary: enough to bring a face under a
# painting's warm or cool light, not enough to turn skin blue.
MAX_CHROMA_SHIFT = 10.0
# Statistics of this many pixels move by far less than the differences the fit corrects.
FIT_SAMPLE_PIXELS = 10_000
# Shadow/highlight weights below this make their offsets explode; beyond it they do little.
_MIN_TONE_WEIGHT = 0.3


class TargetProvider(Protocol):
    def __call__(self, foreground: RegionStats, reference: RegionStats) -> RegionStats: ...


def match_reference(foreground: RegionStats, reference: RegionStats) -> RegionStats:
    """The classic target: look like the reference region."""
    return reference


def blend_target(current: RegionStats, target: RegionStats, strength: float, max_chroma_shift: float) -> RegionStats:
    goal = current.as_array() + strength * (target.as_array() - current.as_array())
    shift = goal[4:6] - current.as_array()[4:6]
    length = float(np.hypot(*shift))
    if length > max_chroma_shift:
        goal[4:6] = current.as_array()[4:6] + shift * (max_chroma_shift / length)
    return RegionStats.from_array(goal)


def fit_operators(
    foreground: np.ndarray,
    weights: np.ndarray,
    target: RegionStats,
    *,
    strength: float,
    bounds: Bounds = BOUNDS,
    max_chroma_shift: float = MAX_CHROMA_SHIFT,
) -> OperatorParams:
    """Operator parameters that move ``foreground`` (RGB float [0,1], weighted by ``weights``) toward ``target``."""
    foreground, weights = sample_pixels(foreground, weights)
    current = lab_region_stats(to_lab(foreground), weights)
    goal = blend_target(current, target, strength, max_chroma_shift)

    gains = np.ones(3, np.float32)
    for _ in range(2):  # the second pass corrects what the first one's mean-colour approximation missed
        now = lab_region_stats(to_lab(apply_light(foreground, OperatorParams(wb_gains=tuple(gains)))), weights)
        mean_now = _linear_rgb(now.l_mean, now.a_mean, now.b_mean)
        mean_goal = _linear_rgb(now.l_mean, goal.a_mean, goal.b_mean)
        step = mean_goal / np.maximum(mean_now, 1e-4)
        step /= float(LUMA @ (step * mean_now)) / max(float(LUMA @ mean_now), 1e-6)  # keep luminance
        gains = np.clip(gains * step, *bounds.gain).astype(np.float32)

    exposure = 0.0
    for _ in range(2):  # L is not linear in the gain: measure and correct once more
        params = OperatorParams(wb_gains=tuple(float(g) for g in gains), exposure_ev=exposure)
        now = lab_region_stats(to_lab(apply_light(foreground, params)), weights)
        exposure += float(np.log2(_luminance(goal.l_mean) / _luminance(now.l_mean)))
        exposure = float(np.clip(exposure, *bounds.exposure_ev))

    light = OperatorParams(wb_gains=tuple(float(g) for g in gains), exposure_ev=exposure)
    now = lab_region_stats(to_lab(apply_light(foreground, light)), weights)
    spread_now = max(now.l_p90 - now.l_p10, 1.0)
    contrast = float(np.clip((goal.l_p90 - goal.l_p10) / spread_now, *bounds.contrast))
    pivot = now.l_mean
    p10 = pivot + (now.l_p10 - pivot) * contrast
    p90 = pivot + (now.l_p90 - pivot) * contrast
    shadows = (goal.l_p10 - p10) / max(float(shadow_weight(np.float32(p10))), _MIN_TONE_WEIGHT)
    highlights = (goal.l_p90 - p90) / max(float(highlight_weight(np.float32(p90))), _MIN_TONE_WEIGHT)
    saturation = goal.chroma_spread / max(now.chroma_spread, 0.5)
    return OperatorParams(
        wb_gains=light.wb_gains,
        exposure_ev=exposure,
        contrast=contrast,
        pivot_l=float(pivot),
        shadows=float(np.clip(shadows, *bounds.tone_offset)),
        highlights=float(np.clip(highlights, *bounds.tone_offset)),
        saturation=float(np.clip(saturation, *bounds.saturation)),
    )


def sample_indices(weights: np.ndarray, limit: int = FIT_SAMPLE_PIXELS) -> np.ndarray:
    """Flat indices of the pixels with weight; an even stride keeps at most ``limit``."""
    inside = np.flatnonzero(weights.reshape(-1) > 0)
    if len(inside) == 0:
        raise ValueError("the foreground is empty")
    return inside[:: max(1, len(inside) // limit)]


def sample_pixels(image: np.ndarray, weights: np.ndarray, limit: int = FIT_SAMPLE_PIXELS) -> tuple[np.ndarray, np.ndarray]:
    """The pixels with weight, as an (n, 1, 3) image and (n, 1) weights; an even stride keeps at most ``limit``."""
    inside = sample_indices(weights, limit)
    return image.reshape(-1, 3)[inside][:, None, :], weights.reshape(-1)[inside][:, None]


def _linear_rgb(lightness: float, a: float, b: float) -> np.ndarray:
    rgb = from_lab(np.array([[[lightness, a, b]]], np.float32))[0, 0]
    return np.power(np.maximum(rgb, 1e-4), GAMMA).astype(np.float32)


def _luminance(lightness: float) -> float:
    """CIE L* -> relative luminance Y."""
    lightness = max(lightness, 0.5)
    if lightness > 8.0:
        return ((lightness + 16.0) / 116.0) ** 3
    return lightness / 903.3

"""A seam without a fringe (Xing et al. 2022: blend the boundary so an imperfect alpha
leaves no colour contamination).

Foreground estimation already removes most of the old room from the edge; what survives
is a tint in pixels the matte calls half-transparent. Those pixels keep their own
brightness, which carries the hair strands' detail, while their colour is pulled toward
the subject's nearby solid interior: fully below FULL_PULL_ALPHA, fading to none at solid.
"""

from __future__ import annotations

import cv2
import numpy as np

_SOLID_ALPHA = 0.98
# Below this alpha a pixel's colour is mostly guesswork by the matte: take the interior's.
FULL_PULL_ALPHA = 0.7


def decontaminate_edge(foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``foreground`` (RGB uint8 layer) with the colour of its semi-transparent edge taken from the interior."""
    band = (alpha > 0) & (alpha < _SOLID_ALPHA)
    solid = (alpha >= _SOLID_ALPHA).astype(np.float32)
    if not band.any() or not solid.any():
        return foreground
    ycrcb = cv2.cvtColor(foreground, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    chroma = ycrcb[..., 1:]
    interior_chroma = _interior_chroma(chroma, solid, band)
    pull = np.clip((_SOLID_ALPHA - alpha) / (_SOLID_ALPHA - FULL_PULL_ALPHA), 0.0, 1.0)[..., None]
    mixed = ycrcb.copy()
    mixed[..., 1:] = chroma + pull * (interior_chroma - chroma)
    out = foreground.copy()
    out[band] = cv2.cvtColor(np.clip(np.rint(mixed), 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)[band]
    return out


def _interior_chroma(chroma: np.ndarray, solid: np.ndarray, band: np.ndarray) -> np.ndarray:
    """The mean chroma of the nearest solid interior at each ``band`` pixel (elsewhere: neutral),
    averaged at the smallest radius that reaches one.

    Soft mattes make wide edge bands, so the radius grows until the interior is in reach;
    where none is even at the largest radius, neutral is safer than a guess.
    """
    result = np.full(chroma.shape, 128.0, np.float32)
    unresolved = band.copy()  # only the edge band is recoloured: the larger radii run only where it needs them
    base = max(5, round(0.01 * max(solid.shape)))
    for radius in (base, 4 * base, 16 * base):
        size = (2 * radius + 1, 2 * radius + 1)
        weight = cv2.blur(solid, size)
        reached = unresolved & (weight > 0.02)
        if reached.any():
            means = cv2.blur(chroma * solid[..., None], size) / np.maximum(weight, 1e-6)[..., None]
            result[reached] = means[reached]
            unresolved &= ~reached
        if not unresolved.any():
            break
    return result

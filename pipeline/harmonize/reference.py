"""Where in the artwork the subject's target appearance comes from.

* ``artwork``: the complete artwork, not only what the subject leaves visible (Xing et al.
  2022: the whole background is the better cue to its light);
* ``ring``: a band around the placement box, the light the subject stands in;
* ``region``: a rectangle staff chose on the artwork (interactive harmonization, Valanarasu
  et al.); an artwork without one falls back to the complete artwork.
"""

from __future__ import annotations

import numpy as np

from pipeline.types import Artwork, ReferenceMode

# The ring reaches this share of the box's size beyond each of its edges.
RING_MARGIN = 0.35


def ring_around(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """A 0/1 float32 map of the band around ``box`` (x0, y0, x1, y1), the box itself excluded."""
    height, width = shape
    x0, y0, x1, y1 = box
    mx, my = round((x1 - x0) * RING_MARGIN), round((y1 - y0) * RING_MARGIN)
    weights = np.zeros(shape, np.float32)
    weights[max(y0 - my, 0) : min(y1 + my, height), max(x0 - mx, 0) : min(x1 + mx, width)] = 1.0
    weights[y0:y1, x0:x1] = 0.0
    return weights


def reference_weights(artwork: Artwork, box: tuple[int, int, int, int], mode: ReferenceMode) -> np.ndarray:
    """A 0/1 float32 map over the artwork marking the reference region."""
    height, width = artwork.height, artwork.width
    if mode is ReferenceMode.RING:
        ring = ring_around((height, width), box)
        if ring.any():
            return ring
    weights = np.zeros((height, width), np.float32)
    if mode is ReferenceMode.REGION and artwork.spec.reference_region is not None:
        rx0, ry0, rx1, ry1 = artwork.spec.reference_region.to_pixels(width, height)
        weights[ry0:ry1, rx0:rx1] = 1.0
        if weights.any():
            return weights
    weights[:] = 1.0
    return weights

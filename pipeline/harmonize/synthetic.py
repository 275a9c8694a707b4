"""Synthetic composites for training and evaluation (Wang et al.'s protocol).

A real photo's masked region is given the colour statistics of another photo (a Lab
mean/std transfer), then a white-balance error (per-channel gains applied in linear light
under gamma 2.2). The original photo is the ground truth of the result.
"""

from __future__ import annotations

import numpy as np

from pipeline.harmonize.stats import from_lab, region_stats, to_lab

GAMMA = 2.2
GAIN_RANGE = (0.75, 1.3)


def lab_transfer(lab: np.ndarray, source_stats, target_stats) -> np.ndarray:
    """Move Lab pixels from ``source_stats`` to ``target_stats`` (means and standard deviations)."""
    out = lab.copy()
    for channel, (mean, std) in enumerate(
        [("l_mean", "l_std"), ("a_mean", "a_std"), ("b_mean", "b_std")]
    ):
        src_mean, src_std = getattr(source_stats, mean), getattr(source_stats, std)
        dst_mean, dst_std = getattr(target_stats, mean), getattr(target_stats, std)
        out[..., channel] = (lab[..., channel] - src_mean) * (dst_std / max(src_std, 1e-3)) + dst_mean
    return out


def perturb_region(
    image: np.ndarray, mask: np.ndarray, colour_source: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic composite of ``image`` (RGB uint8) inside ``mask`` (0/1), and the gains drawn.

    The masked region takes ``colour_source``'s whole-image Lab statistics, then gains drawn
    uniformly from GAIN_RANGE per channel, applied in linear light.
    """
    weights = (mask > 0).astype(np.float32)
    region = region_stats(image, weights)
    source = region_stats(colour_source, np.ones(colour_source.shape[:2], np.float32))
    transferred = from_lab(lab_transfer(to_lab(image), region, source))
    gains = rng.uniform(*GAIN_RANGE, size=3)
    linear = transferred ** GAMMA * gains
    perturbed = np.clip(linear, 0.0, 1.0) ** (1.0 / GAMMA)
    out = image.copy()
    inside = weights > 0
    out[inside] = np.clip(np.rint(perturbed[inside] * 255.0), 0, 255).astype(np.uint8)
    return out, gains

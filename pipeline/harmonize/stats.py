"""Appearance statistics of an image region, in CIELAB.

L runs 0..100 and a, b roughly -128..127 (OpenCV's float Lab on RGB in [0, 1]). A region is
given by a weight map (an alpha or a 0/1 mask); statistics are weighted by it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Statistics are taken on a copy no larger than this many pixels: they are global, so
# fewer samples change them by far less than the differences they are used to judge.
STATS_MAX_PIXELS = 160_000


@dataclass(frozen=True)
class RegionStats:
    l_p10: float
    l_mean: float
    l_p90: float
    l_std: float
    a_mean: float
    b_mean: float
    a_std: float
    b_std: float

    def as_array(self) -> np.ndarray:
        return np.array(
            [self.l_p10, self.l_mean, self.l_p90, self.l_std, self.a_mean, self.b_mean, self.a_std, self.b_std],
            dtype=np.float64,
        )

    @classmethod
    def from_array(cls, values: np.ndarray) -> RegionStats:
        return cls(*(float(v) for v in values))

    @property
    def chroma_spread(self) -> float:
        return float(np.hypot(self.a_std, self.b_std))


STAT_NAMES = ("l_p10", "l_mean", "l_p90", "l_std", "a_mean", "b_mean", "a_std", "b_std")


def to_lab(image: np.ndarray) -> np.ndarray:
    """RGB uint8 or float in [0, 1] -> float32 Lab."""
    rgb = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    return _converted(rgb, cv2.COLOR_RGB2LAB)


def from_lab(lab: np.ndarray) -> np.ndarray:
    """float32 Lab -> RGB float32 in [0, 1]."""
    return np.clip(_converted(lab.astype(np.float32), cv2.COLOR_LAB2RGB), 0.0, 1.0)


def _converted(image: np.ndarray, code: int) -> np.ndarray:
    """cvtColor, with sampled pixels ((n, 1, 3) columns) converted as one row: OpenCV pays per row,
    and a 10,000-pixel column took 14 times as long as the same pixels in a row."""
    if image.ndim == 3 and image.shape[1] == 1:
        return cv2.cvtColor(image.reshape(1, -1, 3), code).reshape(image.shape)
    return cv2.cvtColor(image, code)


def downsample_for_stats(image: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    height, width = weights.shape
    if height * width <= STATS_MAX_PIXELS:
        return image, weights
    scale = (STATS_MAX_PIXELS / (height * width)) ** 0.5
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return (
        cv2.resize(image, size, interpolation=cv2.INTER_AREA),
        cv2.resize(weights.astype(np.float32), size, interpolation=cv2.INTER_AREA),
    )


def region_stats(image: np.ndarray, weights: np.ndarray) -> RegionStats:
    """Weighted Lab statistics of the region where ``weights`` > 0 (image RGB uint8 or float [0, 1])."""
    image, weights = downsample_for_stats(image, weights)
    return lab_region_stats(to_lab(image), weights)


def lab_region_stats(lab: np.ndarray, weights: np.ndarray) -> RegionStats:
    w = weights.reshape(-1).astype(np.float64)
    total = w.sum()
    if total <= 1e-6:
        raise ValueError("the region is empty")
    pixels = lab.reshape(-1, 3).astype(np.float64)
    mean = (pixels * w[:, None]).sum(axis=0) / total
    std = np.sqrt(np.maximum(((pixels - mean) ** 2 * w[:, None]).sum(axis=0) / total, 0.0))
    p10, p90 = weighted_percentiles(pixels[:, 0], w, (10.0, 90.0))
    return RegionStats.from_array(np.array([p10, mean[0], p90, std[0], mean[1], mean[2], std[1], std[2]]))


def weighted_percentiles(lightness: np.ndarray, weights: np.ndarray, percents: tuple[float, ...]) -> tuple[float, ...]:
    """Percentiles of CIE L (0..100) under weights, to 0.1 L: a weighted histogram, no sort."""
    bins = np.clip(np.rint(lightness * _L_BINS_PER_UNIT), 0, 100 * _L_BINS_PER_UNIT).astype(np.intp)
    cumulative = np.cumsum(np.bincount(bins, weights=weights, minlength=100 * _L_BINS_PER_UNIT + 1))
    cumulative /= cumulative[-1]
    return tuple(float(np.searchsorted(cumulative, p / 100.0)) / _L_BINS_PER_UNIT for p in percents)


_L_BINS_PER_UNIT = 10

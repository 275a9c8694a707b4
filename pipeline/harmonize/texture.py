"""Painterly finish: give the subject the paint's amount of fine detail.

A camera photo is crisp and low in grain; paint is soft in one place and textured in
another. We compare the high-frequency energy (the RMS of a fine high-pass) of the
artwork around the placement with the subject's own, at the artwork's pixel scale, then
soften the subject when it is sharper, or add luminance grain when the paint is rougher.

Only luminance is softened: blurring the colour channels too mixes a face's skin with its
eyes, hair and shadows into grey (Water Lilies' soft paint greyed faces that way). Faces (MTCNN's,
as a soft map) keep FACE_DETAIL_KEPT of their own detail and take only the rest of the grain,
so they stay recognisable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.face_regions import face_mask
from pipeline.types import Face

HIGH_PASS_SIGMA = 1.2
BLUR_SIGMAS = (0.5, 0.8, 1.2, 1.7, 2.4, 3.2)
MAX_GRAIN_STD = 8.0
# Within this ratio of each other, textures already match and the subject is left alone.
TOLERANCE = 1.15
# Energy is measured on a central patch this size: texture is a local, stationary property.
PATCH = 384
_SOLID_ALPHA = 0.95
# Share of their own fine detail faces keep when the subject is softened (and of the grain they are
# spared when it is roughened): a face blurred or grained as much as the paint is no longer found,
# nor recognised, in the souvenir.
FACE_DETAIL_KEPT = 0.6


@dataclass(frozen=True)
class TextureMatch:
    subject_energy: float
    artwork_energy: float
    blur_sigma: float = 0.0
    grain_std: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items()}


def high_frequency_energy(gray: np.ndarray, weights: np.ndarray | None = None) -> float:
    gray = gray.astype(np.float32)
    detail = gray - cv2.GaussianBlur(gray, (0, 0), HIGH_PASS_SIGMA)
    if weights is None:
        return float(np.sqrt(np.mean(detail * detail)))
    total = float(weights.sum())
    return float(np.sqrt((detail * detail * weights).sum() / total)) if total > 0 else 0.0


def _central_patch(shape: tuple[int, int]) -> tuple[slice, slice]:
    height, width = shape
    y0, x0 = max(0, (height - PATCH) // 2), max(0, (width - PATCH) // 2)
    return slice(y0, y0 + PATCH), slice(x0, x0 + PATCH)


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def soften_luminance(foreground: np.ndarray, sigma: float, faces: Sequence[Face] = ()) -> np.ndarray:
    """``foreground`` (RGB uint8) with its luminance blurred by ``sigma`` and its colour kept; faces
    (in the layer's pixels) keep FACE_DETAIL_KEPT of their detail."""
    ycrcb = cv2.cvtColor(foreground, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    luma = ycrcb[..., 0]
    softened = cv2.GaussianBlur(luma, (0, 0), sigma)
    if faces:
        kept = FACE_DETAIL_KEPT * face_mask(luma.shape, faces)
        softened = softened + kept * (luma - softened)
    ycrcb[..., 0] = softened
    return cv2.cvtColor(np.clip(np.rint(ycrcb), 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


def match_texture(
    foreground: np.ndarray,
    alpha: np.ndarray,
    artwork: np.ndarray,
    artwork_weights: np.ndarray,
    faces: Sequence[Face] = (),
) -> tuple[np.ndarray, TextureMatch]:
    """The foreground layer (RGB uint8) with the artwork's fine-detail energy, and what was done.

    ``faces``: the subject's faces in the layer's pixels, softened less."""
    solid = cv2.erode((alpha >= _SOLID_ALPHA).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
    patch = _central_patch(alpha.shape)
    subject_gray = _gray(foreground[patch])
    subject_energy = high_frequency_energy(subject_gray, solid[patch])
    artwork_energy = high_frequency_energy(_gray(artwork), artwork_weights)
    match = TextureMatch(subject_energy, artwork_energy)
    if subject_energy <= 0 or artwork_energy <= 0:
        return foreground, match

    if subject_energy > artwork_energy * TOLERANCE:
        sigma = BLUR_SIGMAS[-1]
        for candidate in BLUR_SIGMAS:
            softened = cv2.GaussianBlur(subject_gray, (0, 0), candidate)
            if high_frequency_energy(softened, solid[patch]) <= artwork_energy:
                sigma = candidate
                break
        return soften_luminance(foreground, sigma, faces), TextureMatch(subject_energy, artwork_energy, blur_sigma=sigma)

    if artwork_energy > subject_energy * TOLERANCE:
        # Seeded: the same photo and artwork always give the same picture.
        noise = np.random.default_rng(0).standard_normal(alpha.shape).astype(np.float32)
        unit_energy = high_frequency_energy(noise[patch])
        grain = min(MAX_GRAIN_STD, np.sqrt(artwork_energy**2 - subject_energy**2) / unit_energy)
        if faces:
            noise = noise * (1.0 - FACE_DETAIL_KEPT * face_mask(alpha.shape, faces))
        grained = foreground.astype(np.float32) + (grain * noise)[..., None]
        return np.clip(np.rint(grained), 0, 255).astype(np.uint8), TextureMatch(
            subject_energy, artwork_energy, grain_std=float(grain)
        )
    return foreground, match

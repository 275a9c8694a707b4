"""White-box colour and light operators, in the spirit of Harmonizer (Ke et al. 2022).

Each operator is a familiar photo-editing control with an identity setting, so a chosen
correction can be read, bounded and shown to staff:

1. white balance: per-channel gains in linear RGB, normalised to keep luminance;
2. exposure: a gain in linear light, in stops;
3. contrast: a slope on CIE L around the foreground's mean;
4. shadows / highlights: L offsets that fade out towards the mid-tones;
5. saturation: a scale on the a, b chroma axes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from pipeline.harmonize.stats import from_lab, to_lab

GAMMA = 2.2
# Rec. 709 luminance weights of linear R, G, B.
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


@dataclass(frozen=True)
class Bounds:
    gain: tuple[float, float] = (0.8, 1.25)
    exposure_ev: tuple[float, float] = (-1.5, 1.5)
    contrast: tuple[float, float] = (0.6, 1.6)
    tone_offset: tuple[float, float] = (-18.0, 18.0)  # shadows and highlights, in L units
    saturation: tuple[float, float] = (0.55, 1.5)


BOUNDS = Bounds()


@dataclass(frozen=True)
class OperatorParams:
    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    exposure_ev: float = 0.0
    contrast: float = 1.0
    pivot_l: float = 50.0  # where contrast turns; no effect at contrast 1
    shadows: float = 0.0
    highlights: float = 0.0
    saturation: float = 1.0

    def within(self, bounds: Bounds = BOUNDS) -> bool:
        checks = [bounds.gain[0] - 1e-6 <= g <= bounds.gain[1] + 1e-6 for g in self.wb_gains]
        checks += [
            bounds.exposure_ev[0] <= self.exposure_ev <= bounds.exposure_ev[1],
            bounds.contrast[0] <= self.contrast <= bounds.contrast[1],
            bounds.tone_offset[0] <= self.shadows <= bounds.tone_offset[1],
            bounds.tone_offset[0] <= self.highlights <= bounds.tone_offset[1],
            bounds.saturation[0] <= self.saturation <= bounds.saturation[1],
        ]
        return all(checks)

    def as_dict(self) -> dict[str, object]:
        values = asdict(self)
        return {k: [round(x, 4) for x in v] if isinstance(v, tuple) else round(v, 4) for k, v in values.items()}


IDENTITY = OperatorParams()


def shadow_weight(lightness: np.ndarray) -> np.ndarray:
    """1 in deep shadow, fading smoothly to 0 by L = 60."""
    t = np.clip(lightness / 60.0, 0.0, 1.0)
    return 1.0 - t * t * (3.0 - 2.0 * t)


def highlight_weight(lightness: np.ndarray) -> np.ndarray:
    """0 up to L = 40, rising smoothly to 1 at L = 100."""
    t = np.clip((lightness - 40.0) / 60.0, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gamma_power(values: np.ndarray, exponent: float) -> np.ndarray:
    """``values ** exponent`` as float32, for values in [0, 1] (OpenCV's pow: a fifth of numpy's time,
    which the palette guard's many small evaluations felt)."""
    flat = np.ascontiguousarray(values, dtype=np.float32)
    return cv2.pow(flat.reshape(1, -1), exponent).reshape(flat.shape)


def apply_light(rgb: np.ndarray, params: OperatorParams) -> np.ndarray:
    """Steps 1-2 on RGB float32 in [0, 1]."""
    gains = np.asarray(params.wb_gains, np.float32) * np.float32(2.0**params.exposure_ev)
    if np.allclose(gains, 1.0):
        return rgb
    linear = gamma_power(rgb, GAMMA) * gains
    return gamma_power(np.clip(linear, 0.0, 1.0), 1.0 / GAMMA)


def apply_tone_and_colour(lab: np.ndarray, params: OperatorParams) -> np.ndarray:
    """Steps 3-5 on float32 Lab."""
    out = lab.copy()
    lightness = params.pivot_l + (lab[..., 0] - params.pivot_l) * params.contrast
    lightness = lightness + params.shadows * shadow_weight(lightness) + params.highlights * highlight_weight(lightness)
    out[..., 0] = np.clip(lightness, 0.0, 100.0)
    out[..., 1:] *= params.saturation
    return out


def apply(image: np.ndarray, params: OperatorParams) -> np.ndarray:
    """The whole chain on an RGB image (uint8, or float in [0, 1]); returns float32 RGB in [0, 1]."""
    rgb = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    lab = to_lab(apply_light(rgb, params))
    return from_lab(apply_tone_and_colour(lab, params))

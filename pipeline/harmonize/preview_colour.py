"""The capture's colour and light as lookup tables, cheap enough for every live-preview frame.

The harmonizer's correction (``OperatorParams``, pipeline/harmonize/operators.py) is global, and
its steps act on one coordinate each: white balance and exposure on each RGB channel on its own
(``apply_light``), contrast and shadows/highlights on CIE L alone, saturation on a and b
(``apply_tone_and_colour``). So the whole chain is, up to 8-bit rounding, a per-channel table on
RGB, OpenCV's 8-bit RGB -> Lab, a per-channel table on L, a, b, and Lab -> RGB: about 1 ms on a
250x300 subject layer, where ``apply`` in float takes about 20 ms, and built in well under a
millisecond from ``apply_light`` and ``apply_tone_and_colour`` themselves. Mean CIEDE2000 from
``apply``: about 0.6 (tests/test_preview_colour.py holds it to ``apply`` for random corrections,
so a change to the operators that breaks the per-coordinate structure is caught there).

A 64^3 RGB cube built with ``apply`` would not depend on that structure, but it costs about
100 ms to build, a millisecond to look up, and errs more (mean 0.8, nearest entry).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.harmonize.operators import IDENTITY, OperatorParams, apply_light, apply_tone_and_colour

# OpenCV's 8-bit Lab: L * 255 / 100, a + 128, b + 128.
_L_SCALE = 255.0 / 100.0
_AB_OFFSET = 128.0
_LEVELS = np.arange(256, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class PreviewColour:
    """One fitted correction as tables; call it on an RGB uint8 image."""

    params: OperatorParams
    light: np.ndarray  # (256, 1, 3) uint8: steps 1-2 per RGB channel
    tone: np.ndarray  # (256, 1, 3) uint8: steps 3-5 per 8-bit Lab channel

    @classmethod
    def of(cls, params: OperatorParams) -> PreviewColour:
        ramp = np.repeat((_LEVELS / 255.0)[:, None, None], 3, axis=2)
        light = _to_uint8(apply_light(ramp, params) * 255.0)
        # L's curve with a = b = 0, and a, b on their own at mid-grey: each output channel depends
        # only on its own input (see the module docstring).
        lab = np.zeros((256, 1, 3), np.float32)
        lab[:, 0, 0] = _LEVELS / _L_SCALE
        lab[:, 0, 1] = lab[:, 0, 2] = _LEVELS - _AB_OFFSET
        lightness = apply_tone_and_colour(np.concatenate([lab[..., :1], np.zeros_like(lab[..., 1:])], axis=2), params)
        chroma = apply_tone_and_colour(np.concatenate([np.full_like(lab[..., :1], 50.0), lab[..., 1:]], axis=2), params)
        tone = np.concatenate(
            [_to_uint8(lightness[..., :1] * _L_SCALE), _to_uint8(chroma[..., 1:] + _AB_OFFSET)], axis=2
        )
        return cls(params=params, light=light.reshape(256, 1, 3), tone=tone.reshape(256, 1, 3))

    @property
    def is_identity(self) -> bool:
        return self.params == IDENTITY

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` (H x W x 3 uint8) corrected: a new array."""
        if self.is_identity:
            return rgb.copy()
        lab = cv2.cvtColor(cv2.LUT(rgb, self.light), cv2.COLOR_RGB2Lab)
        return cv2.cvtColor(cv2.LUT(lab, self.tone), cv2.COLOR_Lab2RGB)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)

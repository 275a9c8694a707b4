"""Subject alphas from BRIA's background-removal models, RMBG-1.4 (IS-Net) and RMBG-2.0 (BiRefNet).

Both are loaded through transformers' remote code (see ``kiosk.models.ModelStore.rmbg_model``);
this module only feeds them pixels and reads their masks, which is where the two differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

RMBG_BACKENDS = ("rmbg-1.4", "rmbg-2.0")
# (height, width) both RMBG models were trained at.
DEFAULT_INPUT_SIZE = (1024, 1024)


@dataclass(frozen=True)
class Normalisation:
    """Per-channel (RGB) mean and std applied to pixels scaled to [0, 1]."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# RMBG-1.4's reference preprocessing: x / 255, then normalize(mean=0.5, std=1.0).
RMBG_1_4_NORMALISATION = Normalisation((0.5, 0.5, 0.5), (1.0, 1.0, 1.0))
# RMBG-2.0 (BiRefNet) takes ImageNet-normalised input.
IMAGENET_NORMALISATION = Normalisation((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def normalisation_for(backend: str) -> Normalisation:
    match backend:
        case "rmbg-1.4":
            return RMBG_1_4_NORMALISATION
        case "rmbg-2.0":
            return IMAGENET_NORMALISATION
    raise ValueError(f"not an RMBG backend: {backend!r} (expected one of {', '.join(RMBG_BACKENDS)})")


class RmbgSegmenter:
    """Runs a loaded RMBG model on an RGB uint8 photo and returns its alpha at the photo's size."""

    def __init__(
        self,
        model: torch.nn.Module,
        backend: str,
        input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
        normalisation: Normalisation | None = None,
    ) -> None:
        default_normalisation = normalisation_for(backend)  # also rejects unknown backends
        normalisation = normalisation or default_normalisation
        self._backend = backend
        self._mean = np.asarray(normalisation.mean, dtype=np.float32)
        self._std = np.asarray(normalisation.std, dtype=np.float32)
        self._model = model.eval()
        self._input_size = input_size

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        in_height, in_width = self._input_size
        # Area averaging when shrinking a camera photo to the model size avoids aliasing.
        shrinking = in_height * in_width < height * width
        resized = cv2.resize(
            image, (in_width, in_height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        )
        pixels = (resized.astype(np.float32) / 255.0 - self._mean) / self._std
        parameter = next(self._model.parameters(), None)
        batch = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None]
        if parameter is not None:
            batch = batch.to(device=parameter.device, dtype=parameter.dtype)
        with torch.inference_mode():
            mask = self._final_mask(self._model(batch))
        small_alpha = mask[0, 0].float().cpu().numpy()
        alpha = cv2.resize(small_alpha, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.clip(alpha, 0.0, 1.0).astype(np.float32, copy=False)

    def _final_mask(self, output: Any) -> torch.Tensor:
        """The model's final (B, 1, h, w) mask as probabilities."""
        if self._backend == "rmbg-1.4":
            # BriaRMBG.forward returns (side_outputs, features); side_outputs[0] is d1, the
            # full-resolution prediction, already through a sigmoid. (BRIA's example then stretches
            # it to min..max; we keep the probabilities, so an empty scene stays empty.)
            side_outputs, _features = output
            return side_outputs[0]
        # BiRefNet returns its predictions coarse to fine, as logits; the last one is the final map.
        return output[-1].sigmoid()

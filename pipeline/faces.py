"""Face detection with MTCNN (Zhang et al. 2016): the P-Net / R-Net / O-Net cascade.

The networks are written to match the pretrained weights shipped by facenet-pytorch, whose
conventions they therefore keep: RGB input scaled as ``(pixel - 127.5) / 128``, and the dense
layers of R-Net and O-Net reading their input flattened in (W, H, C) order, a legacy of the
column-major Caffe/MATLAB original the weights were converted from.

Boxes follow ``pipeline.types``: (x0, y0, x1, y1) in pixels with x1, y1 exclusive.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pipeline.types import Face

# P-Net is a 12x12 detector applied with a stride of 2 (its one 2x2 pooling).
_PNET_WINDOW = 12
_PNET_STRIDE = 2
_RNET_INPUT = 24
_ONET_INPUT = 48

# Overlap limits of the reference cascade.
_NMS_WITHIN_SCALE = 0.5
_NMS_ACROSS_SCALES = 0.7
_NMS_AFTER_RNET = 0.7
_NMS_AFTER_ONET = 0.7

OverlapMode = Literal["union", "min"]


class PNet(nn.Module):
    """Proposal network: fully convolutional, one 12x12 window per output cell."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the face probability map (N, H', W') and box offsets (N, 4, H', W')."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        face_probability = F.softmax(self.conv4_1(x), dim=1)[:, 1]
        return face_probability, self.conv4_2(x)


class RNet(nn.Module):
    """Refinement network: scores and adjusts 24x24 crops of the proposals."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return face probabilities (N,) and box offsets (N, 4)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_whc(x)))
        return F.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output network: final score, box offsets and five landmarks from 48x48 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return face probabilities (N,), box offsets (N, 4) and landmarks (N, 10).

        Landmarks are five x then five y coordinates, as fractions of the input crop.
        """
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_whc(x)))
        return F.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def _flatten_whc(x: torch.Tensor) -> torch.Tensor:
    # The converted dense weights expect features in (W, H, C) order, not PyTorch's (C, H, W).
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


def _to_network_input(pixels: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32, normalised as the weights were trained."""
    tensor = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float()
    return tensor.sub_(127.5).mul_(0.0078125)


def non_max_suppression(
    boxes: np.ndarray, scores: np.ndarray, overlap_limit: float, mode: OverlapMode = "union"
) -> np.ndarray:
    """Greedy NMS: indices of the boxes kept, highest score first.

    A box is dropped when its overlap with a higher-scoring kept box exceeds ``overlap_limit``.
    Overlap is intersection over union (``"union"``) or over the smaller box's area (``"min"``);
    the latter also removes a small box lying inside a bigger one, which the cascade's last
    stage needs because O-Net can return a face together with a box around part of it.
    """
    if mode not in ("union", "min"):
        raise ValueError(f"overlap mode must be 'union' or 'min', got {mode!r}")
    x0, y0, x1, y1 = (boxes[:, i] for i in range(4))
    areas = np.maximum(x1 - x0, 0.0) * np.maximum(y1 - y0, 0.0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        inter_w = np.maximum(np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]), 0.0)
        inter_h = np.maximum(np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]), 0.0)
        intersection = inter_w * inter_h
        if mode == "union":
            denominator = areas[best] + areas[rest] - intersection
        else:
            denominator = np.minimum(areas[best], areas[rest])
        overlap = intersection / np.maximum(denominator, np.finfo(np.float64).tiny)
        order = rest[overlap <= overlap_limit]
    return np.asarray(keep, dtype=np.intp)


def _apply_offsets(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move each edge by the network's offset, a fraction of the box's width or height."""
    sizes = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return boxes[:, :4] + offsets * sizes


def _square_pixel_boxes(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre, snapped to whole pixels: (N, 4) int64."""
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    sides = np.maximum(widths, heights)
    x0 = np.rint(boxes[:, 0] + (widths - sides) / 2)
    y0 = np.rint(boxes[:, 1] + (heights - sides) / 2)
    sides = np.maximum(np.rint(sides), 1)
    return np.stack([x0, y0, x0 + sides, y0 + sides], axis=1).astype(np.int64)


def _crop_batch(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Crop integer boxes and resize them to size x size; parts outside the image are black."""
    height, width = image.shape[:2]
    crops = np.zeros((len(boxes), size, size, 3), dtype=np.uint8)
    for crop, (x0, y0, x1, y1) in zip(crops, boxes.tolist()):
        in_x0, in_y0 = max(x0, 0), max(y0, 0)
        in_x1, in_y1 = min(x1, width), min(y1, height)
        if in_x1 <= in_x0 or in_y1 <= in_y0:
            continue  # wholly outside: an all-black crop, which the network rejects
        patch = image[in_y0:in_y1, in_x0:in_x1]
        if (in_x0, in_y0, in_x1, in_y1) != (x0, y0, x1, y1):
            patch = cv2.copyMakeBorder(
                patch, in_y0 - y0, y1 - in_y1, in_x0 - x0, x1 - in_x1, cv2.BORDER_CONSTANT, value=0
            )
        crop[:] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return crops


class MtcnnFaceDetector:
    """Finds faces, their probability and five landmarks, in RGB photos.

    ``thresholds`` are the per-stage acceptance scores of P-Net, R-Net and O-Net; a face is
    reported only if its final score is also at least ``min_probability``. ``scale_factor``
    is the step between levels of the P-Net image pyramid.
    """

    def __init__(
        self,
        pnet_state: dict,
        rnet_state: dict,
        onet_state: dict,
        *,
        min_face_size_px: int = 40,
        min_probability: float = 0.9,
        detect_long_side: int = 960,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
    ) -> None:
        if min_face_size_px <= 0:
            raise ValueError(f"min_face_size_px must be positive, got {min_face_size_px}")
        if detect_long_side < _PNET_WINDOW:
            raise ValueError(
                f"detect_long_side must be at least {_PNET_WINDOW}, got {detect_long_side}"
            )
        if not 0.0 < scale_factor < 1.0:
            raise ValueError(f"scale_factor must lie strictly between 0 and 1, got {scale_factor}")
        if len(thresholds) != 3:
            raise ValueError(f"thresholds needs one value per stage (3), got {thresholds!r}")
        self.min_face_size_px = min_face_size_px
        self.min_probability = min_probability
        self.detect_long_side = detect_long_side
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = scale_factor
        self._pnet = _load(PNet(), pnet_state)
        self._rnet = _load(RNet(), rnet_state)
        self._onet = _load(ONet(), onet_state)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 (H, W, 3) image, most probable first, in its pixel coordinates.

        Boxes are not clipped to the image: a face cut by the frame keeps its full extent.
        """
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}"
            )
        height, width = image.shape[:2]
        if min(height, width) == 0:
            return []

        # OpenCV needs contiguous rows; callers may pass views such as a channel-flipped BGR image.
        working = np.ascontiguousarray(image)
        long_side = max(height, width)
        if long_side > self.detect_long_side:
            shrink = self.detect_long_side / long_side
            size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
            working = cv2.resize(working, size, interpolation=cv2.INTER_AREA)
        # Per-axis ratios, because rounding the working size changes the aspect ratio slightly.
        ratio_x = working.shape[1] / width
        ratio_y = working.shape[0] / height
        min_face = max(float(_PNET_WINDOW), self.min_face_size_px * min(ratio_x, ratio_y))

        with torch.inference_mode():
            boxes = self._propose(working, min_face)
            if len(boxes) > 0:
                boxes = self._refine(working, boxes)
            if len(boxes) == 0:
                return []
            boxes, landmarks = self._finish(working, boxes)

        to_photo = np.array([ratio_x, ratio_y])
        faces = [
            Face(
                box=tuple(float(v) for v in box[:4] / np.tile(to_photo, 2)),
                probability=float(box[4]),
                landmarks=points / to_photo,
            )
            for box, points in zip(boxes, landmarks)
            if box[4] >= self.min_probability
        ]
        return sorted(faces, key=lambda face: face.probability, reverse=True)

    def _propose(self, image: np.ndarray, min_face: float) -> np.ndarray:
        """Stage 1: P-Net over an image pyramid. Returns square integer boxes with scores (N, 5)."""
        height, width = image.shape[:2]
        # Scale so that a face of min_face pixels fills P-Net's window, then shrink step by step
        # until the image itself is smaller than the window.
        scale = _PNET_WINDOW / min_face
        per_scale = []
        scaled = image
        while min(height, width) * scale >= _PNET_WINDOW:
            scaled_w, scaled_h = math.ceil(width * scale), math.ceil(height * scale)
            # Each level is shrunk from the previous one: area resampling costs in proportion to
            # its source, so this is several times faster than always starting from the full image.
            scaled = cv2.resize(scaled, (scaled_w, scaled_h), interpolation=cv2.INTER_AREA)
            probability, offsets = self._pnet(_to_network_input(scaled[np.newaxis]))
            found = _pnet_windows(
                probability[0].numpy(),
                offsets[0].numpy(),
                scaled_w / width,
                scaled_h / height,
                self.thresholds[0],
            )
            keep = non_max_suppression(found[:, :4], found[:, 4], _NMS_WITHIN_SCALE)
            per_scale.append(found[keep])
            scale *= self.scale_factor
        if not per_scale:
            return np.empty((0, 5))

        candidates = np.concatenate(per_scale)
        keep = non_max_suppression(candidates[:, :4], candidates[:, 4], _NMS_ACROSS_SCALES)
        candidates = candidates[keep]
        boxes = _apply_offsets(candidates[:, :4], candidates[:, 5:9])
        return np.column_stack([_square_pixel_boxes(boxes), candidates[:, 4]])

    def _refine(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Stage 2: R-Net on 24x24 crops. Returns square integer boxes with scores (N, 5)."""
        pixel_boxes = boxes[:, :4].astype(np.int64)
        crops = _crop_batch(image, pixel_boxes, _RNET_INPUT)
        probability, offsets = self._rnet(_to_network_input(crops))
        passed = (probability > self.thresholds[1]).numpy()
        boxes = np.column_stack([boxes[passed, :4], probability.numpy()[passed]])
        offsets = offsets.numpy()[passed]
        keep = non_max_suppression(boxes[:, :4], boxes[:, 4], _NMS_AFTER_RNET)
        boxes, offsets = boxes[keep], offsets[keep]
        return np.column_stack([_square_pixel_boxes(_apply_offsets(boxes, offsets)), boxes[:, 4]])

    def _finish(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 3: O-Net on 48x48 crops. Returns boxes with scores (N, 5), landmarks (N, 5, 2)."""
        pixel_boxes = boxes[:, :4].astype(np.int64)
        crops = _crop_batch(image, pixel_boxes, _ONET_INPUT)
        probability, offsets, points = self._onet(_to_network_input(crops))
        passed = (probability > self.thresholds[2]).numpy()
        boxes = np.column_stack([boxes[passed, :4], probability.numpy()[passed]])
        offsets, points = offsets.numpy()[passed], points.numpy()[passed]

        # Landmarks are relative to the crop O-Net saw, i.e. the box before its final adjustment.
        sizes = (boxes[:, 2:4] - boxes[:, 0:2])[:, np.newaxis, :]
        fractions = np.stack([points[:, :5], points[:, 5:]], axis=2)
        landmarks = boxes[:, np.newaxis, 0:2] + fractions * sizes
        boxes = np.column_stack([_apply_offsets(boxes, offsets), boxes[:, 4]])
        keep = non_max_suppression(boxes[:, :4], boxes[:, 4], _NMS_AFTER_ONET, mode="min")
        return boxes[keep], landmarks[keep]


def _pnet_windows(
    probability: np.ndarray, offsets: np.ndarray, ratio_x: float, ratio_y: float, threshold: float
) -> np.ndarray:
    """P-Net cells scoring at least ``threshold`` as (N, 9): window box in working-image pixels,
    score, and the four edge offsets."""
    rows, cols = np.nonzero(probability >= threshold)
    x0 = cols * _PNET_STRIDE / ratio_x
    y0 = rows * _PNET_STRIDE / ratio_y
    x1 = (cols * _PNET_STRIDE + _PNET_WINDOW) / ratio_x
    y1 = (rows * _PNET_STRIDE + _PNET_WINDOW) / ratio_y
    return np.column_stack([x0, y0, x1, y1, probability[rows, cols], offsets[:, rows, cols].T])


def _load(network: nn.Module, state: dict) -> nn.Module:
    network.load_state_dict(state, strict=True)
    return network.eval()

"""The benchmarks' style metric stands on a real ImageNet network (bench/style_metric.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.style_metric import StyleMetric, to_input  # noqa: E402

# ImageNet class ids (torchvision's order).
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO, CUP = 967, 968
SPACE_SHUTTLE = 812


@pytest.fixture(scope="module")
def metric(session_settings) -> StyleMetric:
    # Fetches the benchmark-only weights on first use; the state dict is loaded strictly.
    return StyleMetric.load(session_settings)


def center_crop_224(image: np.ndarray) -> np.ndarray:
    """ImageNet evaluation's framing: shorter side to 256, then the central 224x224."""
    height, width = image.shape[:2]
    scale = 256 / min(height, width)
    image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    height, width = image.shape[:2]
    y0, x0 = (height - 224) // 2, (width - 224) // 2
    return image[y0 : y0 + 224, x0 : x0 + 224]


def top5(metric: StyleMetric, image: np.ndarray) -> list[int]:
    with torch.inference_mode():
        logits = metric.network(to_input(center_crop_224(image)))
    return logits[0].topk(5).indices.tolist()


def test_the_network_recognises_photos_as_imagenet_mobilenet_v2_does(metric):
    cat, coffee, rocket = top5(metric, skimage.data.chelsea()), top5(metric, skimage.data.coffee()), top5(metric, skimage.data.rocket())
    assert cat[0] in CATS and sum(c in CATS for c in cat) >= 2, cat
    assert coffee[0] in (ESPRESSO, CUP), coffee
    assert SPACE_SHUTTLE in rocket[:3], rocket


def painting_and_mask() -> tuple[np.ndarray, np.ndarray]:
    """A strongly coloured, textured "painting" (tinted bricks) and an elliptic subject mask in its middle."""
    bricks = cv2.resize(skimage.data.brick(), (384, 384), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    tint = np.array([0.95, 0.45, 0.15], np.float32)  # a warm, saturated palette
    painting = np.clip(bricks[..., None] * tint * 1.4 + 0.05, 0, 1)
    mask = np.zeros((384, 384), np.float32)
    cv2.ellipse(mask, (192, 200), (70, 110), 0, 0, 360, 1.0, -1)
    return (painting * 255).astype(np.uint8), mask


def paste(painting: np.ndarray, subject: np.ndarray, mask: np.ndarray) -> np.ndarray:
    subject = cv2.resize(subject, painting.shape[1::-1], interpolation=cv2.INTER_AREA)
    return np.where(mask[..., None] > 0.5, subject, painting).astype(np.uint8)


def test_a_subject_that_takes_on_the_paint_is_closer_in_style_than_a_plain_paste(metric):
    painting, mask = painting_and_mask()
    plain = paste(painting, skimage.data.chelsea(), mask)
    # Half way: the cat's pixels mixed with the paint they cover (palette and brick texture).
    halfway = paste(painting, ((plain.astype(np.float32) + painting) / 2).astype(np.uint8), mask)

    alone, half, pasted = (metric.style_distance(image, mask) for image in (painting, halfway, plain))
    assert alone < half < pasted
    assert alone < 0.5 * pasted  # the paint against itself is far closer than a photo pasted in


def test_content_change_is_zero_for_the_plain_paste_and_grows_with_the_change(metric):
    painting, mask = painting_and_mask()
    plain = paste(painting, skimage.data.chelsea(), mask)
    halfway = paste(painting, ((plain.astype(np.float32) + painting) / 2).astype(np.uint8), mask)

    assert metric.content_change(plain, plain, mask) == 0.0
    assert 0.0 < metric.content_change(halfway, plain, mask) < metric.content_change(painting, plain, mask)

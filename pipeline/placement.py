"""Put the subject into the artwork at the box for its framing.

The subject's crop (its alpha's bounding box) is scaled to fit the box, keeping its aspect,
and anchored at the box's bottom centre: a full-body subject stands on the box's bottom
edge, and a bust, whose crop ends where the photo ended, is cut by it.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.types import Artwork, Placement, Subject


def plan_placement(subject: Subject, artwork: Artwork) -> Placement:
    box = artwork.spec.boxes[subject.framing].to_pixels(artwork.width, artwork.height)
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    crop_w = subject.box[2] - subject.box[0]
    crop_h = subject.box[3] - subject.box[1]
    scale = min(box_w / crop_w, box_h / crop_h)
    width = max(1, round(crop_w * scale))
    height = max(1, round(crop_h * scale))
    x0 = round((box[0] + box[2]) / 2 - width / 2)
    y1 = box[3]
    return Placement(
        framing=subject.framing,
        box=box,
        scale=scale,
        rect=(x0, y1 - height, x0 + width, y1),
    )


def composite_layer(
    artwork: np.ndarray, foreground: np.ndarray, alpha: np.ndarray, rect: tuple[int, int, int, int]
) -> np.ndarray:
    """The artwork (RGB uint8) with a subject layer of ``rect``'s size blended in by its alpha.

    Pixels the alpha does not touch keep the artwork's exact values.
    """
    out = artwork.copy()
    height, width = artwork.shape[:2]
    rx0, ry0, rx1, ry1 = rect
    # The rect lies inside the framing box, but clip anyway: boxes may touch the edges.
    x0, y0 = max(rx0, 0), max(ry0, 0)
    x1, y1 = min(rx1, width), min(ry1, height)
    if x1 <= x0 or y1 <= y0:
        return out
    fg = foreground[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0].astype(np.float32)
    a = alpha[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0, None]
    bg = out[y0:y1, x0:x1].astype(np.float32)
    blended = bg + a * (fg - bg)
    out[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def scaled_subject(
    foreground: np.ndarray, subject: Subject, placement: Placement
) -> tuple[np.ndarray, np.ndarray]:
    """The subject's colours and alpha cropped and resized to the placement rect."""
    sx0, sy0, sx1, sy1 = subject.box
    rx0, ry0, rx1, ry1 = placement.rect
    size = (rx1 - rx0, ry1 - ry0)
    # Area averaging when shrinking avoids aliasing in hair; bilinear when enlarging.
    interpolation = cv2.INTER_AREA if placement.scale < 1.0 else cv2.INTER_LINEAR
    fg = cv2.resize(foreground[sy0:sy1, sx0:sx1], size, interpolation=interpolation)
    alpha = cv2.resize(subject.alpha[sy0:sy1, sx0:sx1], size, interpolation=interpolation)
    np.clip(alpha, 0.0, 1.0, out=alpha)
    return fg, alpha



def placed_alpha(layer_alpha: np.ndarray, rect: tuple[int, int, int, int], artwork_size: tuple[int, int]) -> np.ndarray:
    """A layer's alpha (``scaled_subject``'s) where ``rect`` puts it, over the whole artwork
    (``artwork_size``: width, height); the parts of the rect past the artwork's edges are cut off."""
    width, height = artwork_size
    mask = np.zeros((height, width), np.float32)
    rx0, ry0, rx1, ry1 = rect
    x0, y0, x1, y1 = max(rx0, 0), max(ry0, 0), min(rx1, width), min(ry1, height)
    mask[y0:y1, x0:x1] = layer_alpha[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0]
    return mask

"""Where the visitor's faces are, as soft pixel maps: the stages that change the subject use them
to leave faces recognisable (colour guard, texture, stylization)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.types import Face

# The soft face mask: an ellipse this much larger than MTCNN's (tight) box, feathered by a share of its height.
FACE_ELLIPSE_SCALE = (0.62, 0.78)  # half-axes as shares of the box's width and height
FACE_FEATHER = 0.18
# The face's skin: the central part of MTCNN's box (eyes, nose, mouth and cheeks, no hair or background).
SKIN_CORE_SHARE = 0.6


def face_mask(shape: tuple[int, int], faces: Sequence[Face]) -> np.ndarray:
    """A soft 0..1 map of the faces (ellipses around MTCNN's boxes), float32 of ``shape``."""
    mask = np.zeros(shape, np.float32)
    for face in faces:
        x0, y0, x1, y1 = face.box
        centre = (round((x0 + x1) / 2), round((y0 + y1) / 2 + 0.05 * (y1 - y0)))
        axes = (max(1, round((x1 - x0) * FACE_ELLIPSE_SCALE[0])), max(1, round((y1 - y0) * FACE_ELLIPSE_SCALE[1])))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, thickness=-1)
    if faces:
        sigma = max(1.0, FACE_FEATHER * float(np.median([f.box[3] - f.box[1] for f in faces])))
        mask = np.maximum(mask, cv2.GaussianBlur(mask, (0, 0), sigma))
    return np.clip(mask, 0.0, 1.0)


def face_core(shape: tuple[int, int], faces: Sequence[Face]) -> np.ndarray:
    """1 on the central SKIN_CORE_SHARE of each face box (what is surely the face's skin), else 0; float32."""
    core = np.zeros(shape, np.float32)
    height, width = shape
    for face in faces:
        x0, y0, x1, y1 = face.box
        mx, my = (x1 - x0) * (1 - SKIN_CORE_SHARE) / 2, (y1 - y0) * (1 - SKIN_CORE_SHARE) / 2
        cx0, cy0 = int(np.clip(round(x0 + mx), 0, width)), int(np.clip(round(y0 + my), 0, height))
        cx1, cy1 = int(np.clip(round(x1 - mx), 0, width)), int(np.clip(round(y1 - my), 0, height))
        core[cy0:cy1, cx0:cx1] = 1.0
    return core

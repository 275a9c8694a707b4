"""Where the visitor's faces are, as soft pixel maps: the stages that change the subject use them
to leave faces recognisable (colour guard, texture, stylization)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.blur import wide_blur
from pipeline.harmonize.palette import mean_chroma
from pipeline.types import Face

# The soft face mask: an ellipse this much larger than MTCNN's (tight) box, feathered by a share of its height.
FACE_ELLIPSE_SCALE = (0.62, 0.78)  # half-axes as shares of the box's width and height
FACE_FEATHER = 0.18
# The face's skin: the central part of MTCNN's box (eyes, nose, mouth and cheeks, no hair or background).
SKIN_CORE_SHARE = 0.6
# Below this the soft face mask is 0: the Gaussian's value at the 4 sigma it reached (exp(-8)).
FACE_MASK_FLOOR = 3.4e-4


def face_mask(shape: tuple[int, int], faces: Sequence[Face]) -> np.ndarray:
    """A soft 0..1 map of the faces (ellipses around MTCNN's boxes), float32 of ``shape``."""
    mask = np.zeros(shape, np.float32)
    if not faces:
        return mask
    height, width = shape
    sigma = max(1.0, FACE_FEATHER * float(np.median([f.box[3] - f.box[1] for f in faces])))
    # OpenCV's float Gaussian reaches 4 sigma: beyond that from every ellipse the feathered map is 0,
    # so only this window is drawn and blurred (the whole map is a 1920x1080 canvas in compose).
    reach = math.ceil(4 * sigma) + 2
    ellipses = []
    for face in faces:
        x0, y0, x1, y1 = face.box
        centre = (round((x0 + x1) / 2), round((y0 + y1) / 2 + 0.05 * (y1 - y0)))
        axes = (max(1, round((x1 - x0) * FACE_ELLIPSE_SCALE[0])), max(1, round((y1 - y0) * FACE_ELLIPSE_SCALE[1])))
        ellipses.append((centre, axes))
    wx0 = max(0, min(c[0] - a[0] for c, a in ellipses) - reach)
    wy0 = max(0, min(c[1] - a[1] for c, a in ellipses) - reach)
    wx1 = min(width, max(c[0] + a[0] for c, a in ellipses) + reach + 1)
    wy1 = min(height, max(c[1] + a[1] for c, a in ellipses) + reach + 1)
    if wx0 >= wx1 or wy0 >= wy1:
        return mask  # every face lies outside the map
    window = mask[wy0:wy1, wx0:wx1]
    for (cx, cy), axes in ellipses:
        cv2.ellipse(window, (cx - wx0, cy - wy0), axes, 0, 0, 360, 1.0, thickness=-1)
    window[:] = np.clip(np.maximum(window, wide_blur(window, sigma)), 0.0, 1.0)
    # Far from every face the map is exactly 0 (stages keep what lies outside ``> 0`` as it was),
    # as the full-size Gaussian's cut-off at 4 sigma made it; the reduced-size blur leaves a faint tail.
    window[window < FACE_MASK_FLOOR] = 0.0
    return mask


def face_core(shape: tuple[int, int], faces: Sequence[Face]) -> np.ndarray:
    """1 on the central SKIN_CORE_SHARE of each face box (what is surely the face's skin), else 0; float32."""
    core = np.zeros(shape, np.float32)
    for face in faces:
        x0, y0, x1, y1 = central_box(face, SKIN_CORE_SHARE, shape)
        core[y0:y1, x0:x1] = 1.0
    return core


def central_box(face: Face, share: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The central ``share`` of the face's box (in width and height), in whole pixels within an image
    of ``shape``; empty (x0 >= x1 or y0 >= y1) where the face lies outside it."""
    height, width = shape
    x0, y0, x1, y1 = face.box
    mx, my = (x1 - x0) * (1 - share) / 2, (y1 - y0) * (1 - share) / 2
    return (
        int(np.clip(round(x0 + mx), 0, width)),
        int(np.clip(round(y0 + my), 0, height)),
        int(np.clip(round(x1 - mx), 0, width)),
        int(np.clip(round(y1 - my), 0, height)),
    )


# Two boxes are the same face when they overlap by at least this share (intersection over union).
FACE_MATCH_IOU = 0.3


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def lost_faces(before: Sequence[Face], after: Sequence[Face]) -> list[Face]:
    """The faces of ``before`` that no face of ``after`` matches."""
    return [f for f in before if not any(box_iou(f.box, g.box) >= FACE_MATCH_IOU for g in after)]


def faces_restored(
    changed: np.ndarray, original: np.ndarray, faces: Sequence[Face], share: float, grow: float = 1.0
) -> np.ndarray:
    """``changed`` (RGB uint8) with ``share`` of its change undone around ``faces`` (their soft
    ellipses, ``grow`` times as large about their centres: hair and neck are part of what makes a
    marginal face a face): a face a stage made unrecognisable gets its own pixels back, and
    nothing else does."""
    grown = [
        Face(
            box=(cx - grow * (f.box[2] - f.box[0]) / 2, cy - grow * (f.box[3] - f.box[1]) / 2,
                 cx + grow * (f.box[2] - f.box[0]) / 2, cy + grow * (f.box[3] - f.box[1]) / 2),
            probability=f.probability,
            landmarks=f.landmarks,
        )
        for f in faces
        for cx, cy in [f.centre]
    ]
    weight = share * face_mask(changed.shape[:2], grown)[..., None]
    restored = changed.astype(np.float32) + weight * (original.astype(np.float32) - changed.astype(np.float32))
    return np.clip(np.rint(restored), 0, 255).astype(np.uint8)


# How a face a stage made unrecognisable or greyed gets its own pixels back, step by step: the
# share of the change undone and how large the ellipse is (hair and neck make a marginal face a face).
FACE_RESTORE_STEPS = ((0.5, 1.0), (1.0, 1.0), (1.0, 2.0), (1.0, 3.0))
# A pixel at least this opaque is part of the subject (for the checks and the face filter).
SUBJECT_LEVEL = 0.5


def greyed_faces(
    faces: Sequence[Face],
    before: np.ndarray,
    after: np.ndarray,
    alpha: np.ndarray,
    paint_chroma: float,
    *,
    share: float = 1.0,
) -> list[Face]:
    """The ``faces`` whose mean CIELAB chroma (over the central ``share`` of their box, on the subject)
    fell by more than the painting's own greyness allows: a face may become as muted as the paint
    (``paint_chroma``), never greyer."""
    greyed = []
    for face in faces:
        x0, y0, x1, y1 = central_box(face, share, alpha.shape)
        if x0 >= x1 or y0 >= y1:
            continue
        on_subject = (alpha[y0:y1, x0:x1] >= SUBJECT_LEVEL).astype(np.float32)
        if not on_subject.any():
            continue
        own = mean_chroma(before[y0:y1, x0:x1], on_subject)
        kept = mean_chroma(after[y0:y1, x0:x1], on_subject)
        if own - kept > max(0.0, own - paint_chroma):
            greyed.append(face)
    return greyed


def face_colour_kept(
    changed: np.ndarray, original: np.ndarray, alpha: np.ndarray, faces: Sequence[Face], paint_chroma: float
) -> tuple[np.ndarray, int]:
    """``changed`` (a subject layer after the looks, RGB uint8) with every face the looks greyed
    (``greyed_faces`` on the faces' skin, SKIN_CORE_SHARE of their boxes) given its own pixels from
    ``original`` back, step by step (FACE_RESTORE_STEPS), until none is greyed; and how many were."""
    greyed = greyed_faces(faces, original, changed, alpha, paint_chroma, share=SKIN_CORE_SHARE)
    restored = changed
    for share, grow in FACE_RESTORE_STEPS if greyed else ():
        restored = faces_restored(changed, original, greyed, share, grow)
        if not greyed_faces(greyed, original, restored, alpha, paint_chroma, share=SKIN_CORE_SHARE):
            break
    return restored, len(greyed)

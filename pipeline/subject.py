"""Who is in the photo, and how they are framed.

People are counted from faces, cross-checked with the matte: a face counts only if it lies
on a large connected part of the silhouette, and a part of the silhouette is kept only if
it holds a face. So a poster's face on the wall behind the visitor is not a person, and a
chair the matte mistook for foreground is not placed into the painting. Several people
form one subject and are placed together.

Framing rule, from r = (median face height) / (silhouette height), where the silhouette
is the bounding box of everything kept:

* full-body  if r < FULL_BODY_MAX_RATIO, or if the silhouette ends above the photo's bottom
             edge (feet and floor in the picture) and r < CLOSE_UP_MIN_RATIO;
* close-up   if r >= CLOSE_UP_MIN_RATIO;
* half-body  otherwise.

MTCNN's box runs from the brows to the chin, about 0.75 of a head, and an adult is about
7.5 heads tall, so a whole standing body gives r ~ 0.1-0.16 and head-and-shoulders r > 0.3.
The thresholds sit halfway between the classes as measured on 15 labelled photos (the 13
of shared/data/people plus the two package photos the tests use): full-body 0.09-0.16,
half-body 0.20-0.235, close-up 0.32-0.77. Reaching the bottom edge alone says little:
full-body shots often have the feet at the frame's edge.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.errors import NoPersonError
from pipeline.types import Face, Framing, Subject

FULL_BODY_MAX_RATIO = 0.18
CLOSE_UP_MIN_RATIO = 0.28

# A face lies on the subject when at least this share of its box is solid foreground.
_FACE_ON_SUBJECT = 0.3
# The silhouette's bottom reaches the photo's bottom edge within this share of the height.
_BOTTOM_EDGE_SHARE = 0.02
_SOLID = 0.5


def find_subject(alpha: np.ndarray, faces: list[Face]) -> Subject:
    height, width = alpha.shape
    solid = (alpha > _SOLID).astype(np.uint8)
    count, labels = cv2.connectedComponents(solid, connectivity=8)

    kept_faces: list[Face] = []
    kept_labels: set[int] = set()
    for face in faces:
        label = _component_under(face, labels, solid)
        if label is not None:
            kept_faces.append(face)
            kept_labels.add(label)
    if not kept_faces:
        raise NoPersonError()

    is_kept = np.zeros(count, np.uint8)
    is_kept[sorted(kept_labels)] = 1
    kept = is_kept[labels]
    # The soft edge (alpha below 0.5) around a kept part belongs to it too.
    grow = max(3, round(0.01 * max(height, width)))
    kept = cv2.dilate(kept, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    subject_alpha = alpha * kept.astype(np.float32)

    rows = np.flatnonzero(subject_alpha.max(axis=1) > 0)
    cols = np.flatnonzero(subject_alpha.max(axis=0) > 0)
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)

    ratio = float(np.median([f.height for f in kept_faces])) / (box[3] - box[1])
    reaches_bottom = box[3] >= height * (1.0 - _BOTTOM_EDGE_SHARE)
    return Subject(
        faces=kept_faces,
        alpha=subject_alpha,
        box=box,
        framing=classify_framing(ratio, reaches_bottom),
        reaches_bottom=reaches_bottom,
        face_to_silhouette=ratio,
    )


def classify_framing(face_to_silhouette: float, reaches_bottom: bool) -> Framing:
    if face_to_silhouette < FULL_BODY_MAX_RATIO:
        return Framing.FULL_BODY
    if not reaches_bottom and face_to_silhouette < CLOSE_UP_MIN_RATIO:
        return Framing.FULL_BODY
    if face_to_silhouette >= CLOSE_UP_MIN_RATIO:
        return Framing.CLOSE_UP
    return Framing.HALF_BODY


def _component_under(face: Face, labels: np.ndarray, solid: np.ndarray) -> int | None:
    height, width = labels.shape
    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    box_labels = labels[y0:y1, x0:x1]
    on_subject = solid[y0:y1, x0:x1].astype(bool)
    if on_subject.mean() < _FACE_ON_SUBJECT:
        return None
    values, counts = np.unique(box_labels[on_subject], return_counts=True)
    return int(values[np.argmax(counts)])

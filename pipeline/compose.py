"""The capture pipeline: faces -> segmentation -> subject and framing -> foreground colours ->
placement -> harmonization (colour and light, texture, clean edge) -> blend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pipeline.errors import NoPersonError
from pipeline.harmonize.harmonizer import Harmonized, Harmonizer
from pipeline.matting import Segmenter, estimate_foreground
from pipeline.placement import composite_layer, plan_placement, scaled_subject
from pipeline.subject import find_subject
from pipeline.types import Artwork, Face, Placement, StageTimings, Subject


class FaceDetector(Protocol):
    def detect(self, image: np.ndarray) -> list[Face]: ...


@dataclass(frozen=True)
class Composition:
    image: np.ndarray  # RGB uint8 at the artwork's resolution
    subject: Subject
    placement: Placement
    harmonized: Harmonized | None  # None when composed without harmonization
    timings: StageTimings


class Compositor:
    """Composes a visitor's photo into an artwork with models loaded once and passed in."""

    def __init__(
        self, segmenter: Segmenter, face_detector: FaceDetector, harmonizer: Harmonizer | None = None
    ) -> None:
        self._segmenter = segmenter
        self._face_detector = face_detector
        self._harmonizer = harmonizer

    def with_harmonizer(self, harmonizer: Harmonizer | None) -> Compositor:
        """The same models with another harmonizer (or none)."""
        return Compositor(self._segmenter, self._face_detector, harmonizer)

    def __call__(self, photo: np.ndarray, artwork: Artwork, timings: StageTimings | None = None) -> Composition:
        timings = timings if timings is not None else StageTimings()
        with timings.measure("faces"):
            faces = self._face_detector.detect(photo)
        if not faces:
            # Matting costs the most; a photo with nobody in it need not pay for it.
            raise NoPersonError()
        with timings.measure("segmentation"):
            alpha = self._segmenter(photo)
        with timings.measure("subject"):
            subject = find_subject(alpha, faces)
        with timings.measure("foreground"):
            foreground = estimate_foreground(photo, subject.alpha)
        with timings.measure("placement"):
            placement = plan_placement(subject, artwork)
            layer, alpha_layer = scaled_subject(foreground, subject, placement)
        harmonized = None
        if self._harmonizer is not None:
            with timings.measure("harmonize"):
                harmonized = self._harmonizer(artwork, placement, layer, alpha_layer)
            layer = harmonized.foreground
        with timings.measure("blend"):
            image = composite_layer(artwork.image, layer, alpha_layer, placement.rect)
        return Composition(image=image, subject=subject, placement=placement, harmonized=harmonized, timings=timings)


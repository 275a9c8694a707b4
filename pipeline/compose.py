"""The capture pipeline: faces -> segmentation -> subject and framing -> foreground colours ->
placement -> harmonization (colour and light, texture, clean edge) -> for the painted look, the
painterly stage (pipeline/looks.py) -> blend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pipeline.errors import NoPersonError
from pipeline.face_regions import face_colour_kept
from pipeline.harmonize.harmonizer import Harmonized, Harmonizer
from pipeline.looks import Painted, PaintedStage, faces_moved
from pipeline.matting import Segmenter, estimate_foreground
from pipeline.parallel import side_by_side
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
    painted: Painted | None = None  # the painted look's stage; None for the realistic look
    faces_restored: int = 0  # faces the looks greyed, given their own pixels back

    @property
    def look(self) -> str:
        return "realistic" if self.painted is None else "painted"


class Compositor:
    """Composes a visitor's photo into an artwork with models loaded once and passed in.

    With a ``painted`` stage it composes the painted look, without one the realistic look."""

    def __init__(
        self,
        segmenter: Segmenter,
        face_detector: FaceDetector,
        harmonizer: Harmonizer | None = None,
        painted: PaintedStage | None = None,
    ) -> None:
        self._segmenter = segmenter
        self._face_detector = face_detector
        self._harmonizer = harmonizer
        self._painted = painted

    @property
    def harmonizer(self) -> Harmonizer | None:
        return self._harmonizer

    def with_harmonizer(self, harmonizer: Harmonizer | None, painted: PaintedStage | None = None) -> Compositor:
        """The same models with another harmonizer (or none), and the painted look's stage (or none)."""
        return Compositor(self._segmenter, self._face_detector, harmonizer, painted)

    def __call__(self, photo: np.ndarray, artwork: Artwork, timings: StageTimings | None = None) -> Composition:
        timings = timings if timings is not None else StageTimings()
        subject, foreground = self.cut_out(photo, timings)
        with timings.measure("placement"):
            placement = plan_placement(subject, artwork)
            layer, alpha_layer = scaled_subject(foreground, subject, placement)
            faces_in_layer = faces_moved(subject.faces, subject.box, (layer.shape[1], layer.shape[0]))
        harmonized = None
        plain_layer = layer
        if self._harmonizer is not None:
            with timings.measure("harmonize"):
                harmonized = self._harmonizer(artwork, placement, layer, alpha_layer, faces=faces_in_layer)
            layer = harmonized.foreground
        painted = None
        if self._painted is not None:
            with timings.measure("painting_style"):  # about 0 ms once the artwork's style is cached
                style, ready = self._painted.artwork_style(artwork, placement.box)
            score = self._scorer(artwork, placement, alpha_layer, harmonized)
            painted = self._painted(
                artwork.image, placement.rect, layer, alpha_layer, faces_in_layer, style, score, timings=timings, style_ready=ready
            )
            layer = painted.foreground
        faces_restored = 0
        if harmonized is not None and faces_in_layer:
            # The looks may adapt a face's colour, never grey it: a face greyer than both its own
            # colour and the painting's gets its own pixels back.
            with timings.measure("face_colour"):
                paint_chroma = self._harmonizer.paint_chroma(artwork, placement.box)
                layer, faces_restored = face_colour_kept(layer, plain_layer, alpha_layer, faces_in_layer, paint_chroma)
        with timings.measure("blend"):
            image = composite_layer(artwork.image, layer, alpha_layer, placement.rect)
        return Composition(
            image=image,
            subject=subject,
            placement=placement,
            harmonized=harmonized,
            timings=timings,
            painted=painted,
            faces_restored=faces_restored,
        )

    def cut_out(self, photo: np.ndarray, timings: StageTimings | None = None) -> tuple[Subject, np.ndarray]:
        """The visitor cut out of ``photo`` as captures do it: the subject (its alpha at the photo's
        size) and the photo with the subject's own colours in the edge band (RGB uint8)."""
        timings = timings if timings is not None else StageTimings()
        # Faces are found beside the matting, on the other core: MTCNN runs on one torch thread,
        # and the matte's edge solve on one Python thread.
        with timings.measure("segmentation"):  # until the faces are found too
            faces, alpha = side_by_side(lambda: self._detect_faces(photo, timings), lambda: self._segmenter(photo))
        if not faces:
            raise NoPersonError()
        with timings.measure("subject"):
            subject = find_subject(alpha, faces)
        with timings.measure("foreground"):
            foreground = estimate_foreground(photo, subject.alpha)
        return subject, foreground

    def _detect_faces(self, photo: np.ndarray, timings: StageTimings) -> list[Face]:
        with timings.measure_beside("faces"):
            return self._face_detector.detect(photo)

    def _scorer(
        self, artwork: Artwork, placement: Placement, alpha: np.ndarray, harmonized: Harmonized | None
    ) -> Callable[[np.ndarray], float] | None:
        """How the painted variants are scored: as the colour-and-light candidates, against the same
        reference region (nothing scores without harmonization)."""
        if harmonized is None:
            return None
        harmonizer = self._harmonizer
        return lambda layer: harmonizer.score_layer(artwork, placement, layer, alpha, harmonized.reference)


"""Harmonizing a composite someone else made: `artbooth harmonize`, and benchmarks on other people's data.

The composite's masked region is the subject; the rest of the image serves as the painting.

    from kiosk.harmonize import CompositeModels, harmonize_composite

    models = CompositeModels.load(settings)          # once: MTCNN, the colour-and-light harmonizer,
                                                     # the stylization networks, a bounded style cache
    result = harmonize_composite(composite, mask, models, look="painted")
    result.image                                     # RGB uint8, the composite's size

Looks: ``realistic`` is colour and light only (the capture pipeline's harmonizer, its variants
scored and the best kept); ``painted`` is colour and light, then the painterly stylization
(pipeline/stylize.py) at ``settings.stylize_strength``. Outside the mask (mask 0) the composite comes
back bit for bit. Bad input raises ``CompositeInputError`` (exit code 2, usage) with a message
saying what to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from kiosk.errors import ArtBoothError, ExitCode
from kiosk.settings import LOOKS, Settings
from pipeline.face_regions import FACE_RESTORE_STEPS, SUBJECT_LEVEL, faces_restored, greyed_faces, lost_faces
from pipeline.faces import MtcnnFaceDetector
from pipeline.harmonize.harmonizer import Harmonized, Harmonizer
from pipeline.harmonize.palette import mean_chroma
from pipeline.harmonize.reference import ring_around
from pipeline.placement import composite_layer
from pipeline.looks import PaintedStage, faces_moved
from pipeline.stylize import PaintingStyle, StyleNetwork, Stylized, StylizeParams
from pipeline.types import Artwork, ArtworkSpec, BoundedCache, Face, Framing, NormBox, Placement, StageTimings, image_identity

Look = Literal["realistic", "painted"]

# Mask values below this are a lossy file's noise, not subject (4 of 255): they count as painting.
MASK_NOISE_LEVEL = 4 / 255
# Less paint than this share of the image left outside the mask is no painting to harmonize into.
MIN_PAINTING_SHARE = 0.01
# The subject's hole in the painting is filled at this long side for the colour-and-light
# reference (the whole-artwork statistics should describe paint, not the subject itself).
FILL_LONG_SIDE = 320
# Faces are looked for in the subject's box and this share of its size around it.
FACE_SEARCH_MARGIN = 0.1
# The ring of paint must hold at least this many pixels to give the style; else all the paint does.
MIN_RING_PIXELS = 4096


class CompositeInputError(ArtBoothError):
    """A composite and mask that cannot be harmonized as given (sizes differ, empty or full mask)."""

    exit_code = ExitCode.USAGE


@dataclass
class CompositeModels:
    """The models ``harmonize_composite`` runs on, loaded once and reused across calls."""

    harmonizer: Harmonizer
    face_detector: MtcnnFaceDetector  # the service's settings, over the whole composite
    small_face_detector: MtcnnFaceDetector  # down to composite_face_min_size_px, over the subject
    stylizer: StyleNetwork
    params: StylizeParams
    styles: BoundedCache[PaintingStyle] = field(default_factory=BoundedCache)

    @classmethod
    def load(cls, settings: Settings) -> CompositeModels:
        """Everything from the model store (ModelMissingError, exit 9, when a file is missing or corrupt)."""
        from kiosk.engine import load_harmonizer, use_torch_threads
        from kiosk.models import ModelStore

        use_torch_threads(settings)
        store = ModelStore(settings)
        stylizer = store.stylizer()  # the newest files first: a missing one is reported before torch loads the rest
        return cls(
            harmonizer=load_harmonizer(settings),
            face_detector=store.face_detector(),
            small_face_detector=store.face_detector(settings.composite_face_min_size_px),
            stylizer=stylizer,
            params=stylize_params(settings),
            styles=BoundedCache(settings.stylize_style_cache_size),
        )


def stylize_params(settings: Settings) -> StylizeParams:
    return StylizeParams(
        strength=settings.stylize_strength,
        face_protection=settings.stylize_face_protection,
        min_working_side=settings.stylize_min_working_side,
        max_working_pixels=settings.stylize_max_working_pixels,
    )


@dataclass(frozen=True)
class HarmonizedComposite:
    image: np.ndarray  # RGB uint8, the composite's size
    look: Look
    faces_before: list[Face]  # faces MTCNN found on the subject before, composite pixels
    faces_after: list[Face]  # ... and after
    faces_restored: int  # faces the looks made MTCNN lose, given their own pixels back
    timings_ms: dict[str, float]
    harmonized: Harmonized  # the colour-and-light stage: its variants, their scores, the one kept
    stylized: Stylized | None  # the painted look's stage; None for realistic

    def report(self) -> dict[str, object]:
        """JSON-friendly values, for `artbooth harmonize --json`."""

        def faces(found: Sequence[Face]) -> list[dict[str, object]]:
            return [{"box": [round(v, 1) for v in f.box], "p": round(f.probability, 4)} for f in found]

        report: dict[str, object] = {
            "look": self.look,
            "faces_before": faces(self.faces_before),
            "faces_after": faces(self.faces_after),
            "faces_restored": self.faces_restored,
            "timings_ms": {stage: round(ms, 1) for stage, ms in self.timings_ms.items()},
            "variant": self.harmonized.chosen.variant.name,
            "scores": {c.variant.name: round(c.score, 4) for c in self.harmonized.candidates},
            "score": round(self.harmonized.chosen.score, 4),
        }
        if self.stylized is not None:
            report["stylize"] = {
                "strength": self.stylized.strength,
                "working_size": list(self.stylized.working_size),
                "working_scale": round(self.stylized.working_scale, 4),
            }
        return report


def harmonize_composite(
    composite: np.ndarray,
    mask: np.ndarray,
    models: CompositeModels,
    *,
    look: Look = "realistic",
    artwork_style: np.ndarray | None = None,
) -> HarmonizedComposite:
    """Harmonize the subject ``mask`` marks into the rest of ``composite``.

    ``composite``: RGB uint8 (H, W, 3). ``mask``: (H, W), uint8 0..255 or float 0..1, the subject's
    opacity (white: subject; below 4 of 255 counts as painting). ``artwork_style``: RGB uint8 image whose paint the painted look takes
    (any size, all of it counts; default: the paint around the mask, i.e. a ring around its box).
    Raises CompositeInputError for a mask of another size, an empty mask (nothing at least half
    opaque), a mask that leaves (almost) no painting, or ``artwork_style`` with the realistic look.
    """
    if look not in LOOKS:
        raise CompositeInputError(f"look must be one of {', '.join(LOOKS)}, not {look!r}")
    if artwork_style is not None and look != "painted":
        raise CompositeInputError("an artwork style image is used by the painted look only (--look painted)")
    alpha = subject_alpha(composite, mask)
    timings = StageTimings()
    height, width = alpha.shape
    ys, xs = np.nonzero(alpha > 0)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)

    with timings.measure("faces_before"):
        found_before = SubjectFaces.search(models, composite, alpha, box)
        faces_before = found_before.all
    with timings.measure("colour_light"):
        painting = _painting_without_subject(composite, alpha)
        spec = ArtworkSpec(
            id="composite",
            title="composite",
            artist="",
            year="",
            boxes={framing: NormBox(box[0] / width, box[1] / height, box[2] / width, box[3] / height) for framing in Framing},
        )
        placement = Placement(framing=Framing.HALF_BODY, box=box, scale=1.0, rect=box)
        x0, y0, x1, y1 = box
        layer_alpha = alpha[y0:y1, x0:x1]
        harmonized = models.harmonizer(
            Artwork(spec=spec, image=painting),
            placement,
            composite[y0:y1, x0:x1],
            layer_alpha,
            faces=faces_moved(faces_before, box, (x1 - x0, y1 - y0)),
        )
        image = composite_layer(composite, harmonized.foreground, layer_alpha, box)
    stylized = None
    if look == "painted":
        # The capture pipeline's painted stage: its variants scored as the colour-and-light ones.
        stage = PaintedStage(models.stylizer, models.styles, models.params)
        with timings.measure("painting_style"):
            if artwork_style is not None:
                source, weights = artwork_style, np.ones(artwork_style.shape[:2], np.float32)
            else:
                source, weights = composite, _paint_around(alpha, box)
            style = stage.style((image_identity(source), image_identity(weights)), source, lambda: weights)
        scored_in = Artwork(spec=spec, image=painting)
        painted = stage(
            composite,
            box,
            harmonized.foreground,
            layer_alpha,
            faces_moved(faces_before, box, (x1 - x0, y1 - y0)),
            style,
            score=lambda layer: models.harmonizer.score_layer(scored_in, placement, layer, layer_alpha, harmonized.reference),
            timings=timings,
        )
        image = composite_layer(composite, painted.foreground, layer_alpha, box)
        stylized = painted.stylized
    with timings.measure("faces_after"):
        found_after = SubjectFaces.search(models, image, alpha, box)
        # The visitor stays recognisable: a face MTCNN found before and misses now (a darkened small
        # face, strokes across a marginal one), or one the looks made greyer than both its own
        # colour and the painting's, gets its own pixels back, step by step, until MTCNN finds
        # every face again and none is greyed.
        paint_chroma = mean_chroma(composite, (alpha == 0).astype(np.float32))
        greyed = greyed_faces(faces_before, composite, image, alpha, paint_chroma)
        lost = found_before.missing_from(found_after)
        lost += lost_faces(greyed, lost)
        harmonized_image = image
        for share, grow in FACE_RESTORE_STEPS if lost else ():
            image = faces_restored(harmonized_image, composite, lost, share, grow)
            found_after = SubjectFaces.search(models, image, alpha, box)
            if not found_before.missing_from(found_after) and not greyed_faces(lost, composite, image, alpha, paint_chroma):
                break
    return HarmonizedComposite(
        image=image,
        look=look,
        faces_before=faces_before,
        faces_after=found_after.all,
        faces_restored=len(lost),
        timings_ms=timings.ms,
        harmonized=harmonized,
        stylized=stylized,
    )


def subject_alpha(composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The subject's alpha (float32 0..1) from ``mask``, or CompositeInputError saying what is wrong
    with the pair (cheap: callers check before loading models)."""
    if composite.ndim != 3 or composite.shape[2] != 3 or composite.dtype != np.uint8:
        raise CompositeInputError(f"the composite must be RGB uint8 (H, W, 3), not {composite.dtype} {composite.shape}")
    if mask.shape[:2] != composite.shape[:2]:
        raise CompositeInputError(
            f"the mask is {mask.shape[1]}x{mask.shape[0]} but the composite is "
            f"{composite.shape[1]}x{composite.shape[0]}; they must be the same size"
        )
    alpha = mask.astype(np.float32) / (255.0 if mask.dtype == np.uint8 else 1.0)
    if alpha.ndim == 3:
        alpha = alpha.mean(axis=2)
    alpha = np.clip(alpha, 0.0, 1.0)
    alpha[alpha < MASK_NOISE_LEVEL] = 0.0
    if not (alpha >= SUBJECT_LEVEL).any():
        raise CompositeInputError("the mask is empty: no pixel is marked as the subject (white is subject, black painting)")
    if (alpha < SUBJECT_LEVEL).mean() < MIN_PAINTING_SHARE:
        raise CompositeInputError(
            "the mask covers the whole image: nothing is left to serve as the painting (white is subject, black painting)"
        )
    return alpha


@dataclass(frozen=True)
class SubjectFaces:
    """The faces on the subject (composite pixels; a face counts when its centre lies on the
    subject, so faces painted in the artwork are not the visitor's), as two MTCNN searches see them:
    over the whole composite with the service's settings, as anyone checking a result runs it; and
    over the subject's box and a margin down to small faces (a subject small in the painting). Near
    the smallest size each finds faces the other misses."""

    whole: list[Face]
    close: list[Face]

    @classmethod
    def search(
        cls, models: CompositeModels, image: np.ndarray, alpha: np.ndarray, box: tuple[int, int, int, int]
    ) -> SubjectFaces:
        height, width = alpha.shape
        x0, y0, x1, y1 = box
        mx, my = round((x1 - x0) * FACE_SEARCH_MARGIN), round((y1 - y0) * FACE_SEARCH_MARGIN)
        cx0, cy0, cx1, cy1 = max(x0 - mx, 0), max(y0 - my, 0), min(x1 + mx, width), min(y1 + my, height)
        close = [
            Face(
                box=(face.box[0] + cx0, face.box[1] + cy0, face.box[2] + cx0, face.box[3] + cy0),
                probability=face.probability,
                landmarks=face.landmarks + np.array([cx0, cy0]),
            )
            for face in models.small_face_detector.detect(image[cy0:cy1, cx0:cx1])
        ]
        return cls(whole=_on_subject(models.face_detector.detect(image), alpha), close=_on_subject(close, alpha))

    @property
    def all(self) -> list[Face]:
        return self.close + lost_faces(self.whole, self.close)

    def missing_from(self, after: SubjectFaces) -> list[Face]:
        """The faces a search found here and the same search does not find in ``after``."""
        lost_close = lost_faces(self.close, after.close)
        return lost_close + lost_faces(lost_faces(self.whole, after.whole), lost_close)


def _on_subject(faces: Sequence[Face], alpha: np.ndarray) -> list[Face]:
    height, width = alpha.shape
    return [
        face
        for face in faces
        if 0 <= face.centre[0] < width and 0 <= face.centre[1] < height
        and alpha[int(face.centre[1]), int(face.centre[0])] >= SUBJECT_LEVEL
    ]


def _painting_without_subject(composite: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The composite with the subject's pixels filled from the paint around them (coarsely: the
    colour-and-light reference only needs the painting's statistics)."""
    height, width = alpha.shape
    scale = min(1.0, FILL_LONG_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    hole = cv2.resize((alpha > 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    hole = cv2.dilate(hole, np.ones((3, 3), np.uint8))
    small = cv2.resize(composite, size, interpolation=cv2.INTER_AREA)
    filled = cv2.resize(cv2.inpaint(small, hole, 3, cv2.INPAINT_TELEA), (width, height), interpolation=cv2.INTER_LINEAR)
    painting = composite.copy()
    inside = alpha > 0
    painting[inside] = filled[inside]
    return painting


def _paint_around(alpha: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The reference region of the style: the ring of paint around the subject's box, or all the paint."""
    paint = (alpha == 0).astype(np.float32)
    ring = ring_around(alpha.shape, box) * paint
    return ring if ring.sum() >= MIN_RING_PIXELS else paint

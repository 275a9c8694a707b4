"""The live preview's picture: one camera frame in, the visitor placed inside the artwork out.

Pure numpy/OpenCV/torch work with no asyncio: the track runs it in an executor thread.

Per frame: the camera frame shrunk by a whole factor to ``preview_matte_long_side`` (320 px:
the subject is shrunk into its box in the artwork anyway, and a quarter of the pixels makes
every step below four times cheaper; the result differs from full-resolution work by PSNR
38 dB) -> MediaPipe selfie segmentation (the landscape network for landscape frames, run
by LiteRT) -> temporal smoothing of the alpha -> the capture's own subject and placement
rules (``find_subject``, ``plan_placement``, ``scaled_subject``, the capture's colour and
light, ``composite_layer``) into the artwork scaled to the preview's size. Two things are
refreshed beside the rendering, never inside a frame: the faces (``face_work``), from an MTCNN
detection every ``preview_face_interval_s`` (people move little in half a second, and MTCNN
costs more than the rest of a frame together, so a frame that waited for it would stall the
video); and the colour (``colour_work``), see below.

Colour and light. So that the photo does not surprise the visitor, the preview shows the
capture's colour correction: every ``preview_colour_interval_s`` the capture's own harmonizer
(``kiosk.engine.load_harmonizer``: candidates fitted, scored, the best chosen) runs on the last
frame's subject layer in the artwork, and its chosen operators, turned into lookup tables
(pipeline/harmonize/preview_colour.py), correct the subject layer of every frame after it (about
1 ms). A refit keeps the last correction while the subject's colours have not changed
(``_SAME_SUBJECT_LAB``). It works on the scene shrunk to ``preview_matte_long_side``, the detail
the layer came from: on the shared people x paintings it costs a third of the CPU of a refit at the
preview's 640 px (85 against 230 ms median) and puts the preview as close to the photo (mean
CIEDE2000 3.7 against 3.6 per pixel, 10 scenes). The painted look starts with the same
colour-and-light step, so the one correction serves both looks. Its stylization is not previewed:
the transform alone takes longer than a frame at the preview's layer size (bench/preview.py
``--colour`` measures both).

Temporal smoothing. A selfie network run on each frame on its own makes the edge flicker:
the alpha of a still edge pixel jumps by 0.1-0.3 between frames. The preview keeps an
exponential moving average of the alpha whose weight is motion-aware, per pixel:

    follow = still_weight + (1 - still_weight) * min(1, blurred |grey_t - grey_t-1| / motion_levels)
    alpha_t = alpha_t-1 + follow * (network_alpha_t - alpha_t-1)

Where the camera image did not change, the new alpha only contributes ``still_weight``
(steady edge); where the image changed by ``motion_levels`` grey levels or more, the new
alpha is taken as it is, so a moving visitor leaves no ghost trail behind. Motion is
measured on the image rather than on the alpha because flicker is exactly the alpha
changing while the image does not. The grey difference is box-blurred first so single
noisy sensor pixels do not count as motion.

Foreground colour estimation (``estimate_foreground``), which captures use to keep the
room's colour off the edge, is left out: it costs more than segmentation itself, and a
one-frame fringe is not worth the frame rate.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from kiosk.engine import load_harmonizer
from kiosk.models import ModelStore
from kiosk.settings import Settings
from pipeline.compose import FaceDetector
from pipeline.errors import NoPersonError
from pipeline.harmonize.harmonizer import Harmonizer
from pipeline.harmonize.preview_colour import PreviewColour
from pipeline.harmonize.stats import region_stats
from pipeline.looks import faces_moved
from pipeline.matting import Segmenter, SelfieSegmenter
from pipeline.placement import composite_layer, plan_placement, scaled_subject
from pipeline.subject import find_subject
from pipeline.types import Artwork, Face, Placement, Subject

# After averaging, alphas this close to 0 or 1 are the tail of the average, not translucency;
# snapping them (as pipeline.matting does for fresh alphas) keeps old positions from
# lingering as a faint veil and keeps the subject's bounding box tight.
_SETTLED_ALPHA = 0.02
# The motion measure is blurred over about this share of the frame's long side.
_MOTION_BLUR_SHARE = 0.0125
# A colour refit whose subject's CIELAB statistics (percentiles, means, spreads of L, a, b) all lie
# this close to those of the last fit keeps the last correction: the harmonizer would fit nearly the
# same one, from a subject that differs by less than a just noticeable difference, at 60-230 ms of
# CPU. A visitor posing costs a millisecond per refit; one who moves, turns or steps away, a refit.
_SAME_SUBJECT_LAB = 2.0
# Frame sizes whose aspect ratios differ by less than this show the same view at another
# resolution (a browser adapting its sending size rounds each side on its own).
_SAME_ASPECT_TOLERANCE = 0.02


def preview_size(frame_width: int, frame_height: int, artwork_width: int, artwork_height: int) -> tuple[int, int]:
    """The artwork's aspect fitted into the camera frame's size, with even sides for the video encoder."""
    if frame_width * artwork_height <= frame_height * artwork_width:
        width, height = frame_width, frame_width * artwork_height // artwork_width
    else:
        width, height = frame_height * artwork_width // artwork_height, frame_height
    # Integer arithmetic: a float scale can land one pixel short (960 * 640/960 = 639.99...).
    return max(2, width - width % 2), max(2, height - height % 2)


class AlphaSmoother:
    """The motion-aware moving average of the alpha described in the module docstring."""

    def __init__(self, *, still_weight: float, motion_levels: float) -> None:
        self._still_weight = still_weight
        self._motion_levels = motion_levels
        self._previous_grey: np.ndarray | None = None
        self._previous_alpha: np.ndarray | None = None

    def reset(self) -> None:
        self._previous_grey = None
        self._previous_alpha = None

    def __call__(self, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        previous_grey, previous_alpha = self._previous_grey, self._previous_alpha
        if previous_grey is None or previous_alpha is None or previous_grey.shape != grey.shape:
            smoothed = alpha
        else:
            side = 2 * max(1, round(_MOTION_BLUR_SHARE * max(grey.shape) / 2)) + 1
            motion = cv2.blur(cv2.absdiff(grey, previous_grey), (side, side)).astype(np.float32)
            follow = motion * ((1.0 - self._still_weight) / self._motion_levels) + self._still_weight
            np.minimum(follow, 1.0, out=follow)
            smoothed = previous_alpha + follow * (alpha - previous_alpha)
            smoothed[smoothed < _SETTLED_ALPHA] = 0.0
            smoothed[smoothed > 1.0 - _SETTLED_ALPHA] = 1.0
        self._previous_grey = grey
        self._previous_alpha = smoothed
        return smoothed


@dataclass(frozen=True)
class FaceSighting:
    """One face detection: the faces, the size of the (matte-sized) frame they were found on, and when."""

    faces: tuple[Face, ...]
    frame_size: tuple[int, int]
    at: float


@dataclass(frozen=True)
class ColourFit:
    """One colour refresh: the correction chosen for ``artwork`` (the full-size artwork, whatever
    the preview's size), and the subject's colour statistics it was fitted to."""

    colour: PreviewColour
    artwork: Artwork
    subject: np.ndarray  # RegionStats.as_array() of the subject layer, in CIELAB units


@dataclass(frozen=True)
class _Scene:
    """What a frame composed, kept for the next colour refresh: the subject layer before colour."""

    artwork: Artwork
    canvas: Artwork
    placement: Placement
    layer: np.ndarray
    alpha: np.ndarray
    faces: list[Face]  # in the layer's pixels

    def shrunk_to(self, long_side: int) -> _Scene:
        """The scene with the canvas's long side at most ``long_side``, the subject shrunk with it."""
        scale = long_side / max(self.canvas.width, self.canvas.height)
        if scale >= 1.0:
            return self
        size = (max(2, round(self.canvas.width * scale)), max(2, round(self.canvas.height * scale)))
        canvas = Artwork(spec=self.canvas.spec, image=cv2.resize(self.canvas.image, size, interpolation=cv2.INTER_AREA))
        placement = dataclasses.replace(
            self.placement,
            box=_scaled_box(self.placement.box, scale),
            rect=_scaled_box(self.placement.rect, scale),
            scale=self.placement.scale * scale,
        )
        x0, y0, x1, y1 = placement.rect
        layer_size = (max(1, x1 - x0), max(1, y1 - y0))
        placement = dataclasses.replace(placement, rect=(x0, y0, x0 + layer_size[0], y0 + layer_size[1]))
        layer = cv2.resize(self.layer, layer_size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(self.alpha, layer_size, interpolation=cv2.INTER_AREA)
        faces = faces_moved(self.faces, (0, 0, self.layer.shape[1], self.layer.shape[0]), layer_size)
        return _Scene(self.artwork, canvas, placement, layer, alpha, faces)


def _scaled_box(box: tuple[int, int, int, int], scale: float) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return round(x0 * scale), round(y0 * scale), round(x1 * scale), round(y1 * scale)


class PreviewRenderer:
    """Turns camera frames (RGB uint8, H x W x 3) into preview frames, one connection's state.

    Face detection and colour fitting are kept out of ``render``, so no frame waits for them:
    after a render, ``face_work`` and ``colour_work`` hand out a face detection and a colour refit
    when one is due and the last of its kind has ended, which the caller runs, typically on other
    threads while the next frames render; frames rendered after it finished use its result. They
    are separate so that a refit (the longer) never delays the faces a moving visitor needs.

    ``harmonizer``: the capture's, whose chosen correction the preview shows; None: no colour
    correction (the frames are as the camera's colours).

    Not thread-safe for concurrent ``render`` calls (the track renders one frame at a time).
    ``set_artwork`` may be called from any thread and applies from the next ``render``; the
    work handed out may run on other threads than ``render``.
    """

    def __init__(
        self,
        settings: Settings,
        artwork: Artwork,
        *,
        portrait_segmenter: Segmenter,
        landscape_segmenter: Segmenter,
        face_detector: FaceDetector,
        harmonizer: Harmonizer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._face_interval_s = settings.preview_face_interval_s
        self._colour_interval_s = settings.preview_colour_interval_s
        self._harmonizer = harmonizer
        self._matte_long_side = settings.preview_matte_long_side
        self._portrait_segmenter = portrait_segmenter
        self._landscape_segmenter = landscape_segmenter
        self._face_detector = face_detector
        self._clock = clock
        self._smoother = AlphaSmoother(
            still_weight=settings.preview_alpha_still_weight,
            motion_levels=settings.preview_alpha_motion_levels,
        )
        self._artwork = artwork
        self._canvas: Artwork | None = None  # the artwork at the preview's size, reused while neither changes
        self._canvas_source: Artwork | None = None
        # Replaced whole by _detect_faces (one reference assignment: atomic for render's thread).
        self._sighting: FaceSighting | None = None
        self._faces: list[Face] = []  # the sighting's faces in the last rendered frame's pixels
        self._last_matte_frame: np.ndarray | None = None
        self._last_composite: np.ndarray | None = None
        self._last_composite_at = 0.0
        self._last_composite_canvas: Artwork | None = None
        # Long enough to cover one late detection.
        self._hold_s = 2 * settings.preview_face_interval_s
        self._detection_in_flight = False
        self._detection_wanted_now = False
        self.face_detections = 0
        # Replaced whole by a colour refresh (one reference assignment: atomic for render's thread).
        self._colour: ColourFit | None = None
        self._refit_in_flight = False
        self._last_scene: _Scene | None = None
        # The artwork and time of the last refit started (a failed one waits its interval too).
        self._colour_attempt: tuple[Artwork, float] | None = None
        self.colour_refreshes = 0

    @property
    def faces(self) -> list[Face]:
        """The faces the last frame was rendered with, in the pixels of that frame shrunk to
        ``preview_matte_long_side``."""
        return list(self._faces)

    def set_artwork(self, artwork: Artwork) -> None:
        # One reference assignment: atomic, and ``render`` reads it once per frame.
        self._artwork = artwork

    def render(self, frame: np.ndarray) -> np.ndarray:
        """The preview frame for this camera frame: RGB uint8 at ``preview_size``; may be read-only."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) frame, got {frame.dtype} {frame.shape}")
        artwork = self._artwork
        canvas = self._canvas_for(artwork, frame)
        frame = self._matte_sized(frame)
        self._last_matte_frame = frame
        self._faces = self._faces_in(frame)
        if not self._faces:
            # Nobody there: skip segmentation, and let the next visitor start a fresh average.
            self._smoother.reset()
            return canvas.image
        height, width = frame.shape[:2]
        segmenter = self._landscape_segmenter if width > height else self._portrait_segmenter
        alpha = self._smoother(frame, segmenter(frame))
        subject = self._subject(alpha)
        if subject is None:
            return self._hold_or_bare(canvas)
        placement = plan_placement(subject, canvas)
        layer, layer_alpha = scaled_subject(frame, subject, placement)
        if self._harmonizer is not None:
            layer_size = (layer.shape[1], layer.shape[0])
            faces = faces_moved(subject.faces, subject.box, layer_size)
            self._last_scene = _Scene(artwork, canvas, placement, layer, layer_alpha, faces)
            colour = self._colour
            if colour is not None and colour.artwork is artwork:
                layer = colour.colour(layer)
        self._last_composite = composite_layer(canvas.image, layer, layer_alpha, placement.rect)
        self._last_composite_at = self._clock()
        self._last_composite_canvas = canvas
        return self._last_composite

    def _hold_or_bare(self, canvas: Artwork) -> np.ndarray:
        """The picture for a frame whose faces lie on no silhouette. Just after the visitor was
        shown, they moved away from where their face was seen: look again at once, and hold the
        last picture until the new faces arrive rather than blink to the bare artwork. Otherwise
        (a face on a poster, nobody for a while) the bare artwork, without extra detections."""
        held = self._last_composite
        if held is None or self._last_composite_canvas is not canvas or self._clock() - self._last_composite_at > self._hold_s:
            return canvas.image
        self._detection_wanted_now = True
        return held

    def face_work(self) -> Callable[[], None] | None:
        """After a render: a face detection on the last frame when one is due and none is running,
        for the caller to run (it may raise); None otherwise."""
        frame = self._last_matte_frame
        if frame is None or self._detection_in_flight:
            return None
        sighting = self._sighting
        due = (
            sighting is None
            or self._detection_wanted_now
            or self._clock() - sighting.at >= self._face_interval_s
            or not _same_view(sighting.frame_size, (frame.shape[1], frame.shape[0]))
        )
        if not due:
            return None
        self._detection_in_flight = True
        self._detection_wanted_now = False
        return functools.partial(self._detect_faces, frame)

    def _detect_faces(self, frame: np.ndarray) -> None:
        try:
            faces = tuple(self._face_detector.detect(frame))
            self._sighting = FaceSighting(faces, (frame.shape[1], frame.shape[0]), self._clock())
            self.face_detections += 1
        finally:
            self._detection_in_flight = False

    def colour_work(self) -> Callable[[], None] | None:
        """After a render: a colour refit on the subject last rendered when one is due and none is
        running, for the caller to run (it may raise); None otherwise. Due: no correction fitted
        for this artwork yet (at once: another artwork's correction is not shown), or the last
        refit ``preview_colour_interval_s`` old; and a subject rendered since the last refit (an
        empty booth is not refitted again and again)."""
        scene = self._last_scene
        if scene is None or scene.artwork is not self._artwork or self._refit_in_flight:
            return None
        attempt = self._colour_attempt
        if attempt is not None and attempt[0] is scene.artwork and self._clock() - attempt[1] < self._colour_interval_s:
            return None
        self._refit_in_flight = True
        self._last_scene = None
        return functools.partial(self._refresh_colour, scene)

    def _refresh_colour(self, scene: _Scene) -> None:
        """Fit the capture's correction to the scene (the harmonizer's chosen candidate); frames
        rendered afterwards apply it."""
        try:
            self._colour_attempt = (scene.artwork, self._clock())
            scene = scene.shrunk_to(self._matte_long_side)
            subject = region_stats(scene.layer, scene.alpha).as_array()
            fit = self._colour
            if fit is not None and fit.artwork is scene.artwork and np.abs(subject - fit.subject).max() < _SAME_SUBJECT_LAB:
                return  # the same visitor in the same light (a millisecond to tell): the correction stands
            harmonized = self._harmonizer(scene.canvas, scene.placement, scene.layer, scene.alpha, faces=scene.faces)
            self._colour = ColourFit(PreviewColour.of(harmonized.chosen.params), scene.artwork, subject)
            self.colour_refreshes += 1
        finally:
            self._refit_in_flight = False

    @property
    def colour(self) -> PreviewColour | None:
        """The correction frames of the current artwork are rendered with; None before the first fit."""
        colour = self._colour
        return colour.colour if colour is not None and colour.artwork is self._artwork else None

    def _matte_sized(self, frame: np.ndarray) -> np.ndarray:
        """The frame shrunk by a whole factor until its long side is at most ``preview_matte_long_side``."""
        factor = -(-max(frame.shape[:2]) // self._matte_long_side)  # ceiling division
        if factor <= 1:
            return frame
        size = (frame.shape[1] // factor, frame.shape[0] // factor)
        # A whole factor keeps INTER_AREA on its fast path: a plain average of factor x factor blocks.
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

    def _canvas_for(self, artwork: Artwork, frame: np.ndarray) -> Artwork:
        size = preview_size(frame.shape[1], frame.shape[0], artwork.width, artwork.height)
        canvas = self._canvas
        if canvas is None or self._canvas_source is not artwork or (canvas.width, canvas.height) != size:
            interpolation = cv2.INTER_AREA if size[0] < artwork.width else cv2.INTER_LINEAR
            image = cv2.resize(artwork.image, size, interpolation=interpolation)
            image.flags.writeable = False  # handed out as the preview itself when nobody is there
            canvas = Artwork(spec=artwork.spec, image=image)
            self._canvas, self._canvas_source = canvas, artwork
        return canvas

    def _faces_in(self, frame: np.ndarray) -> list[Face]:
        """The last sighting's faces in this frame's pixels: mapped when the browser sends the same
        view at another size; none when the view changed (rotated, cropped) until faces are found on it."""
        sighting = self._sighting
        if sighting is None:
            return []
        width, height = frame.shape[1], frame.shape[0]
        old_width, old_height = sighting.frame_size
        if (width, height) == (old_width, old_height):
            return list(sighting.faces)
        if not _same_view(sighting.frame_size, (width, height)):
            return []
        return [_scaled_face(f, width / old_width, height / old_height) for f in sighting.faces]

    def _subject(self, alpha: np.ndarray) -> Subject | None:
        try:
            return find_subject(alpha, self._faces)
        except NoPersonError:
            return None


def render_offline(renderer: PreviewRenderer, frame: np.ndarray) -> np.ndarray:
    """Render ``frame`` and then run the face detection and colour refit due on this thread, for
    callers without a live track (benchmarks, tests): the frames after it use them, as on a booth."""
    preview = renderer.render(frame)
    for work in (renderer.face_work(), renderer.colour_work()):
        if work is not None:
            work()
    return preview


def _same_view(size: tuple[int, int], other: tuple[int, int]) -> bool:
    """Whether two frame sizes show the same view, one scaled (the aspect ratios agree)."""
    return abs((size[0] / size[1]) / (other[0] / other[1]) - 1.0) <= _SAME_ASPECT_TOLERANCE


def _scaled_face(face: Face, scale_x: float, scale_y: float) -> Face:
    x0, y0, x1, y1 = face.box
    return Face(
        box=(x0 * scale_x, y0 * scale_y, x1 * scale_x, y1 * scale_y),
        probability=face.probability,
        landmarks=face.landmarks * np.array([scale_x, scale_y]),
    )


class PreviewModels:
    """The preview's models, loaded once per process; each connection gets its own renderer.

    The MTCNN detector is shared: its forward passes only read the weights. The selfie
    interpreters are not: each keeps its input and activations between ``set_tensor`` and
    ``invoke``, so two connections rendering at once each need their own.

    The capture's harmonizer (``harmonizer``) is shared too: it keeps only its thread-safe cache
    of the artworks' described reference regions between calls.
    None when the preview shows the camera's colours (``preview_colour`` or ``harmonize`` off).

    Loading sets torch's thread count to ``preview_torch_threads`` (see that setting) for the
    process: every thread that starts torch work afterwards, such as the executor's render
    threads, runs with it (a thread that already ran torch keeps its own count). Connections
    rendering side by side are the parallelism here.
    """

    def __init__(self, settings: Settings, store: ModelStore | None = None) -> None:
        torch.set_num_threads(settings.preview_torch_threads)
        self._settings = settings
        self._store = store or ModelStore(settings)
        self._face_detector = self._store.face_detector()
        self.harmonizer: Harmonizer | None = None
        self.use_harmonization(settings)

    def use_harmonization(self, settings: Settings) -> None:
        """Show the colour correction the harmonize values of ``settings`` give (staff changed them in
        the dashboard): renderers made from now on, i.e. at the booth's next artwork or connection."""
        self.harmonizer = load_harmonizer(settings) if settings.preview_colour and settings.harmonize else None

    def renderer(self, artwork: Artwork) -> PreviewRenderer:
        """A new renderer (with its own segmentation networks) showing ``artwork``."""
        return PreviewRenderer(
            self._settings,
            artwork,
            portrait_segmenter=SelfieSegmenter(self._store.selfie_interpreter(landscape=False)),
            landscape_segmenter=SelfieSegmenter(self._store.selfie_interpreter(landscape=True)),
            face_detector=self._face_detector,
            harmonizer=self.harmonizer,
        )

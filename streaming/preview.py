"""The live preview's picture: one camera frame in, the visitor placed inside the artwork out.

Pure numpy/OpenCV/torch work with no asyncio: the track runs it in an executor thread.

Per frame: the camera frame shrunk by a whole factor to ``preview_matte_long_side`` (320 px:
the subject is shrunk into its box in the artwork anyway, and a quarter of the pixels makes
every step below four times cheaper; the result differs from full-resolution work by PSNR
38 dB) -> MediaPipe selfie segmentation (the landscape network for landscape frames, run
by LiteRT) -> temporal smoothing of the alpha -> the capture's own subject and placement
rules (``find_subject``, ``plan_placement``, ``scaled_subject``, ``composite_layer``) into
the artwork scaled to the preview's size. Faces come from the last MTCNN detection,
refreshed every ``preview_face_interval_s`` beside the rendering (``face_request`` /
``detect_faces``): people move little in half a second, and MTCNN costs more than the rest
of a frame together, so a frame that waited for it would stall the video.

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

import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from kiosk.models import ModelStore
from kiosk.settings import Settings
from pipeline.compose import FaceDetector
from pipeline.errors import NoPersonError
from pipeline.matting import Segmenter, SelfieSegmenter
from pipeline.placement import composite_layer, plan_placement, scaled_subject
from pipeline.subject import find_subject
from pipeline.types import Artwork, Face, Subject

# After averaging, alphas this close to 0 or 1 are the tail of the average, not translucency;
# snapping them (as pipeline.matting does for fresh alphas) keeps old positions from
# lingering as a faint veil and keeps the subject's bounding box tight.
_SETTLED_ALPHA = 0.02
# The motion measure is blurred over about this share of the frame's long side.
_MOTION_BLUR_SHARE = 0.0125
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


class PreviewRenderer:
    """Turns camera frames (RGB uint8, H x W x 3) into preview frames, one connection's state.

    Face detection is kept out of ``render``, so no frame waits for MTCNN: after a render,
    ``face_request`` hands out the frame to detect faces on when a detection is due, and
    ``detect_faces`` (run by the caller, typically on another thread while the next frames
    render) publishes the new faces, which frames rendered afterwards use.

    Not thread-safe for concurrent ``render`` calls (the track renders one frame at a time).
    ``set_artwork`` may be called from any thread and applies from the next ``render``;
    ``detect_faces`` may run on another thread than ``render``.
    """

    def __init__(
        self,
        settings: Settings,
        artwork: Artwork,
        *,
        portrait_segmenter: Segmenter,
        landscape_segmenter: Segmenter,
        face_detector: FaceDetector,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._face_interval_s = settings.preview_face_interval_s
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
        # Replaced whole by detect_faces (one reference assignment: atomic for render's thread).
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
        canvas = self._canvas_for(self._artwork, frame)
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

    def face_request(self) -> np.ndarray | None:
        """The last rendered frame (matte-sized, read-only) when a face detection is due and none
        is running; the caller must then pass it to ``detect_faces``. None otherwise."""
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
        return frame

    def detect_faces(self, frame: np.ndarray) -> None:
        """Detect the faces on a frame from ``face_request``; frames rendered afterwards use them."""
        try:
            faces = tuple(self._face_detector.detect(frame))
            self._sighting = FaceSighting(faces, (frame.shape[1], frame.shape[0]), self._clock())
            self.face_detections += 1
        finally:
            self._detection_in_flight = False

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
    """Render ``frame`` and then run any due face detection on this thread, for callers without
    a live track (benchmarks, tests): the frames after it use the faces, as on a booth."""
    preview = renderer.render(frame)
    face_frame = renderer.face_request()
    if face_frame is not None:
        renderer.detect_faces(face_frame)
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

    def renderer(self, artwork: Artwork) -> PreviewRenderer:
        """A new renderer (with its own segmentation networks) showing ``artwork``."""
        return PreviewRenderer(
            self._settings,
            artwork,
            portrait_segmenter=SelfieSegmenter(self._store.selfie_interpreter(landscape=False)),
            landscape_segmenter=SelfieSegmenter(self._store.selfie_interpreter(landscape=True)),
            face_detector=self._face_detector,
        )

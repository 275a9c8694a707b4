"""The outgoing preview track: the visitor's camera in, the rendered preview out.

Shaped like aiortc's examples/server ``VideoTransformTrack``, but never rendering on the
event loop and never falling behind the camera:

* a reader task drains the incoming track as fast as frames arrive and keeps only the
  newest in a one-slot mailbox (each frame it overwrites is a drop);
* a render task takes the newest frame and renders it in the executor passed in, and starts
  the renderer's face detections there too, beside the rendering, when they are due, and its
  colour refits in the colour executor passed in (one thread for all previews: a refit takes
  longer than a face detection, and must neither hold up the faces nor take a render's thread);
* ``recv`` hands out each rendered picture as soon as it is ready, with its camera frame's
  timestamp (so the receiver's jitter buffer sees the true capture times); when no picture
  came for one and a half camera frame intervals while newer camera frames arrived, it
  repeats the latest picture with the newest camera timestamp, so the video keeps the
  camera's pace.
  Each answer is a new ``VideoFrame`` wrapping the rendered (read-only) array without a
  copy, so a repeat's timestamp never changes a frame handed out before.

Draining matters: aiortc queues decoded frames of a remote track in an unbounded queue, so a
reader that only reads as fast as it renders would let that queue (and the delay) grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from typing import Generic, TypeVar

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from pipeline.types import Artwork
from streaming.preview import PreviewRenderer

logger = logging.getLogger(__name__)

Item = TypeVar("Item")


class NewestFrameMailbox(Generic[Item]):
    """A one-slot mailbox: ``put`` replaces an item nobody took yet, counting it in ``drops``."""

    def __init__(self) -> None:
        self._item: Item | None = None
        self._filled = asyncio.Event()
        self.drops = 0

    def put(self, item: Item) -> None:
        if self._filled.is_set():
            self.drops += 1
        self._item = item
        self._filled.set()

    async def take(self) -> Item:
        """The newest item, waiting for one when the slot is empty."""
        await self._filled.wait()
        item = self._item
        self._item = None
        self._filled.clear()
        return item  # type: ignore[return-value]  # set by put() before the event


@dataclass(frozen=True)
class PreviewStats:
    frames_in: int  # camera frames read
    frames_rendered: int
    frames_out: int  # frames handed to the sender, repeats included
    frames_repeated: int  # handed out again because rendering had not finished a newer one
    drops: int  # camera frames overwritten before rendering took them
    render_errors: int  # frames, face detections and colour refits that failed
    fps_in: float
    fps_out: float
    processing_ms_p50: float  # decode to RGB + render, in the executor
    processing_ms_p95: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _rate(times: deque[float]) -> float:
    """Events per second over the monotonic timestamps kept."""
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


class PreviewTrack(MediaStreamTrack):
    """A video track of preview frames rendered from ``source``; create it inside the event loop."""

    kind = "video"

    def __init__(
        self,
        source: MediaStreamTrack,
        renderer: PreviewRenderer,
        executor: Executor,
        *,
        colour_executor: Executor,
        stats_window: int,
    ) -> None:
        super().__init__()
        self._source = source
        self._renderer = renderer
        self._executor = executor
        self._colour_executor = colour_executor
        self._mailbox: NewestFrameMailbox[VideoFrame] = NewestFrameMailbox()
        self._newest_timestamp: tuple[int | None, object] = (None, None)  # pts, time_base
        self._preview: np.ndarray | None = None
        self._preview_timestamp: tuple[int | None, object] = (None, None)  # its camera frame's
        self._rendered = asyncio.Event()  # a picture recv() has not handed out yet
        self._last_sent: np.ndarray | None = None
        self._last_sent_pts: int | None = None
        self._face_detection: asyncio.Task | None = None
        self._colour_refit: asyncio.Task | None = None
        self._camera_rgb: np.ndarray | None = None
        self._frames_in = self._frames_rendered = self._frames_out = self._frames_repeated = 0
        self._render_errors = 0
        self._in_times: deque[float] = deque(maxlen=stats_window)
        self._out_times: deque[float] = deque(maxlen=stats_window)
        self._processing_ms: deque[float] = deque(maxlen=stats_window)
        self._rendering_allowed = asyncio.Event()
        self._rendering_allowed.set()
        loop = asyncio.get_running_loop()
        self._tasks = (
            loop.create_task(self._read_camera(), name=f"preview-reader-{self.id}"),
            loop.create_task(self._render_newest(), name=f"preview-renderer-{self.id}"),
        )

    def set_artwork(self, artwork: Artwork) -> None:
        self._renderer.set_artwork(artwork)

    def pause_rendering(self, paused: bool) -> None:
        """While paused the last preview frame is repeated and no frame is rendered: a capture
        running on the same cores then finishes sooner (the booth shows its "processing" screen)."""
        if paused:
            self._rendering_allowed.clear()
        else:
            self._rendering_allowed.set()

    def latest_camera_frame(self) -> np.ndarray | None:
        """The camera frame (RGB uint8, read-only) behind the latest preview frame; None before the first."""
        return self._camera_rgb

    def stats(self) -> PreviewStats:
        times = np.array(self._processing_ms) if self._processing_ms else np.zeros(1)
        p50, p95 = np.percentile(times, [50, 95])
        return PreviewStats(
            frames_in=self._frames_in,
            frames_rendered=self._frames_rendered,
            frames_out=self._frames_out,
            frames_repeated=self._frames_repeated,
            drops=self._mailbox.drops,
            render_errors=self._render_errors,
            fps_in=_rate(self._in_times),
            fps_out=_rate(self._out_times),
            processing_ms_p50=float(p50),
            processing_ms_p95=float(p95),
        )

    async def recv(self) -> VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rendered.wait(), self._repeat_after_s())
            if self.readyState != "live":
                raise MediaStreamError
            if self._rendered.is_set():
                self._rendered.clear()
                preview, (pts, time_base) = self._preview, self._preview_timestamp
                if self._is_newer(pts):
                    break
                # The picture lagged behind a repeat already sent with a newer camera timestamp: it
                # goes out below with the newest camera timestamp, never back in time.
            pts, time_base = self._newest_timestamp
            if self._preview is not None and self._is_newer(pts):
                # Newer camera frames wait while rendering lags: keep the pace with the latest picture.
                preview = self._preview
                break
        if preview is self._last_sent:
            self._frames_repeated += 1
        frame = VideoFrame.from_numpy_buffer(preview, format="rgb24")  # no copy: a few microseconds
        frame.pts, frame.time_base = pts, time_base
        self._last_sent, self._last_sent_pts = preview, pts
        self._frames_out += 1
        self._out_times.append(time.monotonic())
        return frame

    def _is_newer(self, pts: int | None) -> bool:
        return pts is not None and (self._last_sent_pts is None or pts > self._last_sent_pts)

    def _repeat_after_s(self) -> float:
        """How long recv() waits for a new picture before repeating the last: one and a half
        camera frame intervals (50 ms until the camera's rate is known)."""
        rate = _rate(self._in_times)
        return min(0.2, max(0.02, 1.5 / rate)) if rate > 0 else 0.05

    def stop(self) -> None:
        super().stop()
        for task in self._tasks:
            task.cancel()
        # A face detection or colour refit under way is left to end (a cancelled task would leave
        # its thread working, unseen): it is short, and then nothing of this track runs any more.
        self._rendered.set()  # wakes a waiting recv() so it sees the track has ended

    async def wait_stopped(self) -> None:
        """After ``stop``: wait until the reader, render, face detection and colour refit tasks have ended."""
        await asyncio.gather(*self._tasks, *self._side_tasks(), return_exceptions=True)

    def _side_tasks(self) -> list[asyncio.Task]:
        return [task for task in (self._face_detection, self._colour_refit) if task is not None]

    async def _read_camera(self) -> None:
        try:
            while True:
                frame = await self._source.recv()
                self._mailbox.put(frame)
                self._frames_in += 1
                self._in_times.append(time.monotonic())
                self._newest_timestamp = (frame.pts, frame.time_base)
        except MediaStreamError:
            # The camera track ended: so does the preview.
            self.stop()

    async def _render_newest(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._rendering_allowed.wait()
            camera_frame = await self._mailbox.take()
            if not self._rendering_allowed.is_set():
                continue  # paused while waiting for the frame (a capture began): none starts now
            try:
                camera_rgb, preview, elapsed_ms = await loop.run_in_executor(
                    self._executor, self._render, camera_frame
                )
            except Exception:
                # One frame the renderer chokes on must not end a visitor's preview.
                logger.exception("rendering a preview frame failed")
                self._render_errors += 1
                continue
            self._camera_rgb = camera_rgb
            self._preview = preview
            self._preview_timestamp = (camera_frame.pts, camera_frame.time_base)
            self._rendered.set()
            self._frames_rendered += 1
            self._processing_ms.append(elapsed_ms)
            detection = self._renderer.face_work()
            if detection is not None:
                self._face_detection = loop.create_task(
                    self._beside(detection, self._executor, "face detection"), name=f"preview-faces-{self.id}"
                )
            refit = self._renderer.colour_work()
            if refit is not None:
                self._colour_refit = loop.create_task(
                    self._beside(refit, self._colour_executor, "colour refit"), name=f"preview-colour-{self.id}"
                )

    async def _beside(self, work: Callable[[], None], executor: Executor, what: str) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(executor, work)
        except Exception:
            # The preview goes on with the faces or colour it had; a later rendered frame asks again.
            logger.exception("%s for the preview failed", what)
            self._render_errors += 1

    def _render(self, camera_frame: VideoFrame) -> tuple[np.ndarray, np.ndarray, float]:
        """Executor side: decode to RGB and render."""
        started = time.perf_counter()
        camera_rgb = camera_frame.to_ndarray(format="rgb24")
        preview = np.ascontiguousarray(self._renderer.render(camera_rgb))
        # Both are handed out more than once (every frame recv() wraps around the preview shares
        # its pixels; latest_camera_frame() may be asked repeatedly): nobody may change them.
        camera_rgb.flags.writeable = False
        preview.flags.writeable = False
        return camera_rgb, preview, (time.perf_counter() - started) * 1000.0

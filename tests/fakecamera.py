"""A fake camera for Chromium: a .y4m file it plays in a loop (--use-file-for-fake-video-capture),
and how the browser tests and benchmarks start Debian's Chromium (never `playwright install`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np


def write_y4m(path: Path, frames: Iterable[np.ndarray], *, fps: int = 30) -> Path:
    """Write RGB uint8 frames (all one even size) as 4:2:0 YUV4MPEG2."""
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in (first, *frames):
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
]


def fake_camera_args(y4m: Path) -> list[str]:
    """Chromium flags that grant the camera without asking and make it play ``y4m``."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
    ]


# Called with (frame, frame index, the person's top-left corner, the portrait's scale).
FrameMark = Callable[[np.ndarray, int, tuple[int, int], float], None]


def visitor_in_room(
    portrait: np.ndarray,
    *,
    size: tuple[int, int] = (640, 480),
    frames: int = 60,
    room=(196, 201, 190),
    mark: FrameMark | None = None,
):
    """The portrait standing in a plain room, swaying a little from side to side, as frames;
    ``mark`` may draw on each frame (a benchmark's frame number)."""
    width, height = size
    scale = 0.85 * height / portrait.shape[0]
    person = cv2.resize(portrait, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ph, pw = person.shape[:2]
    for index in range(frames):
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = room
        x = (width - pw) // 2 + round(20 * np.sin(2 * np.pi * index / frames))
        frame[height - ph :, x : x + pw] = person
        if mark is not None:
            mark(frame, index, (x, height - ph), scale)
        yield frame

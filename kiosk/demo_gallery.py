"""Demo artworks the project paints itself, so a fresh install has something to show.

Each is a deterministic, painting-like backdrop: a scene laid out in flat colour fields,
then covered in short oriented brush strokes that sample the scene's colour, on a faint
canvas weave. They are labelled as demos everywhere they appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from pipeline.types import ArtworkSpec, Framing, NormBox

DEMO_ARTIST = "ArtBooth demo (generated)"

# Landscape boxes: a standing figure on the foreground ground line, busts cut by the frame.
_LANDSCAPE_BOXES = {
    Framing.FULL_BODY: NormBox(0.36, 0.30, 0.64, 0.93),
    Framing.HALF_BODY: NormBox(0.28, 0.32, 0.72, 1.0),
    Framing.CLOSE_UP: NormBox(0.30, 0.28, 0.70, 1.0),
}


@dataclass(frozen=True)
class DemoArtwork:
    spec: ArtworkSpec
    size: tuple[int, int]  # width, height
    paint: Callable[[np.random.Generator, int, int], np.ndarray]
    seed: int


def _vertical_gradient(height: int, width: int, stops: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    positions = np.array([p for p, _ in stops])
    colours = np.array([c for _, c in stops], dtype=np.float32)
    t = np.linspace(0.0, 1.0, height)
    column = np.stack([np.interp(t, positions, colours[:, ch]) for ch in range(3)], axis=1)
    return np.repeat(column[:, None, :], width, axis=1)


def _glow(width: int, height: int, centre: tuple[float, float], *, radius: float, blur: float) -> np.ndarray:
    """A blurred disc (sun, moon) as an (H, W, 1) weight; sizes relative to the height."""
    # Drawn and blurred at 1/8 scale: the blur is wide, so nothing is lost, and it is 60x cheaper.
    small_w, small_h = width // 8, height // 8
    disc = np.zeros((small_h, small_w), np.float32)
    cv2.circle(disc, (int(small_w * centre[0]), int(small_h * centre[1])), int(small_h * radius), 1.0, -1)
    disc = cv2.GaussianBlur(disc, (0, 0), small_h * blur)
    return cv2.resize(disc, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]


def _hills(rng: np.random.Generator, width: int, base: float, amplitude: float, height: int) -> np.ndarray:
    """Y coordinate of a rolling horizon line for each column."""
    x = np.linspace(0, 2 * np.pi, width)
    line = np.full(width, base * height)
    for k in range(1, 4):
        line += amplitude * height / k * np.sin(k * x + rng.uniform(0, 2 * np.pi))
    return line


def _fill_below(scene: np.ndarray, line: np.ndarray, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> None:
    height = scene.shape[0]
    rows = np.arange(height)[:, None]
    below = rows >= line[None, :]
    depth = np.clip((rows - line[None, :]) / max(1.0, height - line.min()), 0, 1)[..., None]
    shade = (1 - depth) * np.array(top, np.float32) + depth * np.array(bottom, np.float32)
    scene[below] = shade[below]


def _paint_meadow(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    scene = _vertical_gradient(
        height, width, [(0.0, (70, 110, 170)), (0.35, (235, 170, 110)), (0.55, (250, 215, 150)), (1.0, (250, 215, 150))]
    )
    sun = _glow(width, height, (0.72, 0.42), radius=0.07, blur=0.04)
    scene = scene * (1 - sun) + sun * np.array([255, 240, 200], np.float32)
    _fill_below(scene, _hills(rng, width, 0.55, 0.03, height), (90, 110, 90), (60, 80, 70))
    _fill_below(scene, _hills(rng, width, 0.68, 0.02, height), (120, 140, 60), (80, 110, 50))
    _fill_below(scene, np.full(width, height * 0.86), (95, 125, 45), (70, 95, 40))
    return scene


def _paint_harbour(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    scene = _vertical_gradient(height, width, [(0.0, (15, 20, 50)), (0.55, (40, 60, 110)), (1.0, (40, 60, 110))])
    glow = _glow(width, height, (0.25, 0.2), radius=0.05, blur=0.05)
    scene = scene * (1 - glow) + glow * np.array([240, 235, 200], np.float32)
    _fill_below(scene, np.full(width, height * 0.58), (30, 50, 90), (10, 20, 45))
    reflection = np.zeros((height, width), np.float32)
    for _ in range(60):
        y = int(rng.uniform(0.6, 0.95) * height)
        x = int(width * 0.25 + rng.normal(0, width * 0.03))
        half = int(rng.uniform(0.01, 0.05) * width)
        cv2.line(reflection, (x - half, y), (x + half, y), 0.8, max(2, height // 300))
    reflection = cv2.GaussianBlur(reflection, (0, 0), 2)[..., None]
    scene = scene * (1 - reflection) + reflection * np.array([220, 210, 160], np.float32)
    _fill_below(scene, np.full(width, height * 0.88), (60, 45, 35), (40, 30, 25))  # the quay
    return scene


def _paint_studio(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    noise = rng.normal(0, 1, (height // 150 + 2, width // 150 + 2)).astype(np.float32)
    mottle = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    base = np.array([70, 48, 35], np.float32) + 10 * mottle
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = np.exp(-(((xx - width * 0.45) / (width * 0.55)) ** 2 + ((yy - height * 0.35) / (height * 0.6)) ** 2))
    scene = base * (0.45 + 0.9 * light[..., None])
    # Folds of a drape on the left.
    folds = 0.5 + 0.5 * np.sin(xx / (width * 0.02) + 3 * np.sin(yy / (height * 0.15)))
    drape = (xx < width * 0.18)[..., None]
    scene = np.where(drape, np.array([110, 25, 30], np.float32) * (0.5 + 0.6 * folds[..., None]), scene)
    return scene


def _brush_strokes(rng: np.random.Generator, scene: np.ndarray) -> np.ndarray:
    height, width = scene.shape[:2]
    canvas = np.clip(scene, 0, 255).astype(np.uint8)
    source = cv2.GaussianBlur(canvas, (0, 0), 3)
    gray = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY).astype(np.float32)
    # Strokes follow the scene's contours, as a painter's would.
    angle = np.arctan2(cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=5), cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=5)) + np.pi / 2
    length = max(6, width // 90)
    thickness = max(3, width // 400)
    count = (width * height) // (length * thickness)
    xs = rng.integers(0, width, count)
    ys = rng.integers(0, height, count)
    colours = np.clip(source[ys, xs].astype(np.float32) + rng.normal(0, 7, (count, 3)), 0, 255).tolist()
    directions = angle[ys, xs] + rng.normal(0, 0.25, count)
    dx, dy = np.cos(directions) * length / 2, np.sin(directions) * length / 2
    starts = np.stack([xs - dx, ys - dy], axis=1).astype(int).tolist()
    ends = np.stack([xs + dx, ys + dy], axis=1).astype(int).tolist()
    # Only the drawing stays in the loop: per-stroke numpy calls made painting take seconds.
    for start, end, colour in zip(starts, ends, colours):
        cv2.line(canvas, start, end, colour, thickness, cv2.LINE_AA)
    weave = (np.sin(np.arange(width) * 1.7)[None, :] * np.sin(np.arange(height) * 1.7)[:, None]) * 4
    return np.clip(canvas.astype(np.float32) + weave[..., None], 0, 255).astype(np.uint8)


def _spec(id_: str, title: str, year: str, boxes: dict[Framing, NormBox]) -> ArtworkSpec:
    return ArtworkSpec(id=id_, title=title, artist=DEMO_ARTIST, year=year, boxes=boxes, demo=True)


DEMO_ARTWORKS: tuple[DemoArtwork, ...] = (
    DemoArtwork(_spec("demo-golden-meadow", "Demo: Golden Hour Meadow", "2026", _LANDSCAPE_BOXES), (1920, 1080), _paint_meadow, 11),
    DemoArtwork(_spec("demo-midnight-harbour", "Demo: Midnight Harbour", "2026", {
        Framing.FULL_BODY: NormBox(0.45, 0.30, 0.75, 0.90),
        Framing.HALF_BODY: NormBox(0.38, 0.30, 0.82, 1.0),
        Framing.CLOSE_UP: NormBox(0.40, 0.25, 0.80, 1.0),
    }), (1920, 1080), _paint_harbour, 12),
    DemoArtwork(_spec("demo-velvet-studio", "Demo: Velvet Portrait Studio", "2026", {
        Framing.FULL_BODY: NormBox(0.25, 0.18, 0.80, 0.95),
        Framing.HALF_BODY: NormBox(0.20, 0.22, 0.85, 1.0),
        Framing.CLOSE_UP: NormBox(0.22, 0.18, 0.82, 1.0),
    }), (1080, 1350), _paint_studio, 13),
)


def paint(demo: DemoArtwork) -> np.ndarray:
    """The demo's image, RGB uint8; the same bytes on every run."""
    rng = np.random.default_rng(demo.seed)
    width, height = demo.size
    return _brush_strokes(rng, demo.paint(rng, width, height))

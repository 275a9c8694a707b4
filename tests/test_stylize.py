"""The painterly stage on the real stylization networks: only the subject changes, strength 0 is the
identity, faces stay findable, the subject takes the painting's palette and skin stays skin."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kiosk.models import ModelStore
from kiosk.settings import Settings
from pipeline.face_regions import face_mask
from pipeline.harmonize.reference import ring_around
from pipeline.stylize import (
    PaintingStyle,
    StylizeParams,
    painting_style,
    stroke_length,
    stylize,
    working_scale,
)
from pipeline.types import BoundedCache

# The synthetic painting's two colours (RGB): a saturated orange and a deep blue.
ORANGE = (235, 120, 20)
BLUE = (25, 60, 200)


def stroke_painting(height: int, width: int, stroke_px: int, seed: int = 7) -> np.ndarray:
    """A 'painting' of short, thick orange and blue strokes on orange."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = ORANGE
    for _ in range(height * width // (stroke_px * stroke_px * 3)):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        angle = rng.uniform(0, np.pi)
        length = stroke_px * 3
        end = (int(x + length * np.cos(angle)), int(y + length * np.sin(angle)))
        colour = BLUE if rng.random() < 0.5 else tuple(int(c * rng.uniform(0.8, 1.0)) for c in ORANGE)
        cv2.line(image, (x, y), end, colour, thickness=stroke_px, lineType=cv2.LINE_AA)
    return image


@pytest.fixture(scope="module")
def networks(models_dir):
    store = ModelStore(Settings(models_dir=models_dir))
    return store.stylizer(), store.face_detector()


@pytest.fixture(scope="module")
def scene(grace_hopper):
    """Grace Hopper (an elliptical cut-out) composed into the stroke painting."""
    painting = stroke_painting(560, 720, stroke_px=6)
    subject = cv2.resize(grace_hopper, (300, 352), interpolation=cv2.INTER_AREA)
    cutout = np.zeros(subject.shape[:2], np.float32)
    cv2.ellipse(cutout, (150, 190), (135, 175), 0, 0, 360, 1.0, thickness=-1)
    cutout = cv2.GaussianBlur(cutout, (0, 0), 2.0)
    alpha = np.zeros(painting.shape[:2], np.float32)
    x0, y0 = 210, 560 - 352
    alpha[y0:, x0 : x0 + 300] = cutout
    layer = painting.copy()
    layer[y0:, x0 : x0 + 300] = subject
    composite = np.rint(alpha[..., None] * layer + (1 - alpha[..., None]) * painting).astype(np.uint8)
    box = (x0, y0, x0 + 300, 560)
    return composite, alpha, box


@pytest.fixture(scope="module")
def style(networks, scene):
    stylizer, _ = networks
    composite, alpha, box = scene
    return painting_style(stylizer, composite, ring_around(alpha.shape, box) * (alpha == 0))


@pytest.fixture(scope="module")
def painted(networks, scene, style):
    stylizer, detector = networks
    composite, alpha, _ = scene
    faces = detector.detect(composite)
    return faces, stylize(stylizer, composite, alpha, faces, style, StylizeParams(strength=1.0))


def test_only_the_subject_changes(scene, painted):
    composite, alpha, _ = scene
    _, result = painted
    outside = alpha == 0
    assert np.array_equal(result.image[outside], composite[outside]), "the artwork is untouched, bit for bit"
    inside = alpha > 0.9
    change = np.abs(result.image[inside].astype(int) - composite[inside].astype(int)).mean()
    assert change > 8, f"the subject is repainted (mean change {change:.1f} levels)"


def test_strength_zero_is_the_identity(networks, scene, style):
    stylizer, _ = networks
    composite, alpha, _ = scene
    result = stylize(stylizer, composite, alpha, [], style, StylizeParams(strength=0.0))
    assert np.array_equal(result.image, composite)


def test_faces_found_before_are_found_after(networks, painted):
    _, detector = networks
    faces, result = painted
    assert len(faces) == 1
    after = detector.detect(result.image)
    assert len(after) == 1
    (before_box, after_box) = (np.array(faces[0].box), np.array(after[0].box))
    assert np.abs(before_box - after_box).max() < 0.25 * (faces[0].box[3] - faces[0].box[1])


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.reshape(-1, 1, 3), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)


def test_subject_moves_towards_the_palette_and_skin_stays_skin(scene, painted):
    composite, alpha, _ = scene
    faces, result = painted
    face = face_mask(alpha.shape, faces) > 0.9
    body = (alpha > 0.9) & ~(face_mask(alpha.shape, faces) > 0)
    palette = _lab(np.array([ORANGE, BLUE], np.uint8))[:, 1:]  # a*, b*: hue and chroma

    def palette_distance(image: np.ndarray) -> float:
        chroma = _lab(image[body])[:, 1:]
        return float(np.linalg.norm(chroma[:, None, :] - palette[None], axis=2).min(axis=1).mean())

    before, after = palette_distance(composite), palette_distance(result.image)
    assert after < 0.8 * before, f"distance to the painting's palette {before:.1f} -> {after:.1f}"

    _, a_star, b_star = _lab(result.image[face]).mean(axis=0) - (0, 128, 128)
    hue = np.degrees(np.arctan2(b_star, a_star))
    assert 15 < hue < 85 and np.hypot(a_star, b_star) > 5, f"skin hue {hue:.0f} deg, chroma {np.hypot(a_star, b_star):.1f}"


def test_working_size_follows_the_painting_strokes():
    fine, coarse = stroke_painting(512, 512, stroke_px=3), stroke_painting(512, 512, stroke_px=12)
    everywhere = np.ones((512, 512), np.float32)
    fine_px, coarse_px = stroke_length(fine, everywhere), stroke_length(coarse, everywhere)
    assert coarse_px > 2 * fine_px

    params = StylizeParams(min_working_side=256, max_working_pixels=2_000_000)
    crop = (900, 1200)

    def scale(stroke_px: float) -> float:
        return working_scale(PaintingStyle(np.zeros(100, np.float32), stroke_px, 256, 1), crop, params)

    # Broad strokes: the subject is painted smaller, so the network's strokes come out broad too.
    assert scale(coarse_px) < scale(fine_px) <= 1.0
    assert scale(1000.0) * max(crop) == pytest.approx(256)  # but never below the least working side
    capped = working_scale(PaintingStyle(np.zeros(100, np.float32), 1.0, 256, 1), crop, StylizeParams())
    assert capped * capped * crop[0] * crop[1] <= StylizeParams().max_working_pixels * 1.001


def test_style_cache_is_bounded_and_computes_once():
    cache = BoundedCache(size=2)
    made: list[str] = []

    def maker(name: str):
        return lambda: made.append(name) or PaintingStyle(np.zeros(100, np.float32), 4.0, 256, 1)

    first = cache.get("a", maker("a"))
    assert cache.get("a", maker("a")) is first and made == ["a"]
    cache.get("b", maker("b"))
    cache.get("c", maker("c"))
    assert len(cache) == 2
    cache.get("a", maker("a"))
    assert made == ["a", "b", "c", "a"], "the oldest style was dropped"


def test_dark_clothes_stay_darker_than_the_paint(scene, painted):
    """The transform lifts darks toward the paint's mean lightness; the visitor's dark uniform must
    stay darker than the painting around it (measured without the tone rule: L* 5.7 -> 55, lighter
    than the painting's 48; with it: 34)."""
    composite, alpha, box = scene
    faces, result = painted

    def lightness(image: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32) * 100 / 255

    dark = (alpha > 0.9) & (lightness(composite) < 30) & ~(face_mask(alpha.shape, faces) > 0)
    paint = ring_around(alpha.shape, box).astype(bool) & (alpha == 0)
    assert dark.sum() > 500
    painting_lightness = float(lightness(composite)[paint].mean())
    after = float(lightness(result.image)[dark].mean())
    assert after < painting_lightness - 8, f"dark clothes L* {after:.1f} against the paint's {painting_lightness:.1f}"


def test_a_bounded_cache_shared_by_threads_keeps_its_bound_and_its_values():
    """The preview's renderers share one harmonizer and its cache: threads reading, adding and
    dropping at once never break it."""
    import threading

    cache: BoundedCache[int] = BoundedCache(size=3)
    errors: list[BaseException] = []

    def use(offset: int) -> None:
        try:
            for i in range(2000):
                key = (offset + i) % 7
                assert cache.get(key, lambda: key * 10) == key * 10
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=use, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(cache) == 3

"""Colour and light for paintings: a visitor composed into a strongly coloured painting takes its
light and palette, while skin stays skin-coloured and the face is not greyed."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.models import ModelStore
from pipeline.harmonize.operators import OperatorParams, apply
from pipeline.harmonize.palette import PaletteGuard, guard_palette, mean_chroma
from pipeline.harmonize.stats import to_lab
from pipeline.types import Artwork, ArtworkSpec, Framing, NormBox

SKIN_HUE_DEG = (20.0, 80.0)


def _painting(name: str, rgb: tuple[int, int, int]) -> Artwork:
    """A flat field of one colour with a soft brushy ripple, so it has some paint texture."""
    height, width = 720, 1080
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ripple = 10 * np.sin(xx / 23 + 2 * np.sin(yy / 41))[..., None]
    image = np.clip(np.asarray(rgb, np.float32) + ripple, 0, 255).astype(np.uint8)
    boxes = {f: NormBox(0.3, 0.2, 0.7, 1.0) for f in Framing}
    return Artwork(ArtworkSpec(name, name, "test", "2026", boxes), image)


GOLD_SCREEN = _painting("gold", (214, 164, 58))
NIGHT = _painting("night", (18, 30, 78))


def _face_patch(result) -> np.ndarray:
    """The central part of the first face MTCNN found, where the compositor placed it."""
    face = result.subject.faces[0]
    x0, y0, x1, y1 = face.box
    scale, (rx0, ry0), (sx0, sy0) = result.placement.scale, result.placement.rect[:2], result.subject.box[:2]
    cx, cy = rx0 + ((x0 + x1) / 2 - sx0) * scale, ry0 + ((y0 + y1) / 2 - sy0) * scale
    half = (x1 - x0) * scale * 0.3
    return result.image[int(cy - half) : int(cy + half), int(cx - half) : int(cx + half)]


def _lab_means(patch: np.ndarray) -> tuple[float, float, float, float, float]:
    """L, a, b means, chroma and hue (degrees) of a patch."""
    lab = to_lab(patch).reshape(-1, 3)
    lightness, a, b = (float(v) for v in lab.mean(axis=0))
    chroma = mean_chroma(patch, np.ones(patch.shape[:2], np.float32))
    return lightness, a, b, chroma, float(np.degrees(np.arctan2(b, a)))


@pytest.fixture(scope="module")
def plain_compositor(compositor):
    return compositor.with_harmonizer(None)


@pytest.fixture(scope="module")
def detector(session_settings):
    return ModelStore(session_settings).face_detector()


@pytest.mark.parametrize("photo_name", ["astronaut", "grace_hopper"])
def test_a_visitor_takes_a_paintings_light_and_palette_without_greying(
    request, compositor, plain_compositor, detector, photo_name
):
    photo = request.getfixturevalue(photo_name)
    outcome = {}
    for painting in (GOLD_SCREEN, NIGHT):
        plain = _lab_means(_face_patch(plain_compositor(photo, painting)))
        result = compositor(photo, painting)
        after = _lab_means(_face_patch(result))
        painting_chroma = mean_chroma(painting.image, np.ones(painting.image.shape[:2], np.float32))
        outcome[painting.spec.id] = plain, after
        lightness, _, b, chroma, hue = after
        assert SKIN_HUE_DEG[0] < hue < SKIN_HUE_DEG[1], f"{painting.spec.id}: skin hue {hue:.0f} degrees"
        allowed_drop = max(0.0, plain[3] - painting_chroma)
        assert chroma >= plain[3] - allowed_drop - 0.5, f"{painting.spec.id}: face greyed {plain[3]:.1f} -> {chroma:.1f}"
        assert result.harmonized is not None and result.harmonized.chosen.variant.name != "untouched"
        assert len(detector.detect(result.image)) >= 1, f"{painting.spec.id}: the visitor's face is still found"

    (gold_plain, gold_after), (night_plain, night_after) = outcome["gold"], outcome["night"]
    assert gold_after[2] > gold_plain[2] + 2, "the gold screen warms the skin (more yellow)"
    assert night_after[0] < night_plain[0] - 5, "the night darkens the face"
    # Cooler, but only as far as the face keeps its colour: taking yellow from warm skin greys it, so
    # the palette guard turns the skin's hue (away from yellow) rather than lowering b*, which stays
    # within 0.3 of the plain paste's (issue 12's cleaner matte moved it from 16.9 to 17.1 of 17.0).
    assert night_after[4] < night_plain[4] - 1.0, "the night cools the face's hue (less yellow)"
    assert night_after[2] < gold_after[2] - 5 and night_after[0] < gold_after[0] - 5


def test_the_guard_keeps_skin_in_skin_hues_and_its_chroma():
    """A strongly blue white balance, as an unguarded fit gives under a night sky, is eased back."""
    skin = np.empty((40, 40, 3), np.float32)
    skin[:] = np.array([224, 172, 140], np.float32) / 255  # a light skin tone, hue about 55 degrees
    skin += np.random.default_rng(0).normal(0, 0.02, skin.shape).astype(np.float32)
    skin = np.clip(skin, 0, 1)
    weights = np.ones(skin.shape[:2], np.float32)
    blue = OperatorParams(wb_gains=(0.8, 1.0, 1.25), saturation=0.6)
    guard = PaletteGuard()
    guarded = guard_palette(blue, skin, weights, painting_chroma=30.0, guard=guard)

    before, unguarded, after = (_lab_means(np.rint(x * 255).astype(np.uint8)) for x in (skin, apply(skin, blue), apply(skin, guarded)))
    assert not guard.skin_hue_deg[0] <= unguarded[4] <= guard.skin_hue_deg[1] or unguarded[3] < before[3] - 5, "control"
    assert guard.skin_hue_deg[0] <= after[4] <= guard.skin_hue_deg[1]
    assert after[3] >= before[3] - 0.5, f"chroma {before[3]:.1f} -> {after[3]:.1f}"
    assert after[3] <= before[3] * 1.25, "kept, not made garish"
    assert guarded.saturation <= guard.max_saturation
    assert all(abs(np.log(g)) < abs(np.log(b)) for g, b in zip(guarded.wb_gains, blue.wb_gains) if b != 1.0), "cast eased"


def test_exposure_does_not_blow_out_a_face_mtcnn_found():
    """A bright painting asks for more exposure than a pale face can take: where the face is known,
    its bright pixels stop further from white than the rest of the subject's may go."""
    subject = np.empty((60, 60, 3), np.float32)
    subject[:] = np.array([150, 150, 150], np.float32) / 255  # grey clothes
    subject[10:30, 20:40] = np.array([235, 200, 180], np.float32) / 255  # a pale face
    weights = np.ones(subject.shape[:2], np.float32)
    face = np.zeros(subject.shape[:2], np.float32)
    face[10:30, 20:40] = 1.0
    brighter = OperatorParams(exposure_ev=1.2)
    guard = PaletteGuard()
    unknown = guard_palette(brighter, subject, weights, painting_chroma=30.0, guard=guard)
    known = guard_palette(brighter, subject, weights, painting_chroma=30.0, guard=guard, faces=face)
    assert known.exposure_ev < unknown.exposure_ev <= brighter.exposure_ev
    brightest_face = float((np.power(subject[10:30, 20:40], 2.2) * 2.0**known.exposure_ev).max())
    assert brightest_face <= guard.max_face_bright_level + 0.01, "the face keeps its shading, short of white"

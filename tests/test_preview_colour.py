"""The live preview shows the capture's colour and light (issue 11, item 5): real models, a real
capture Compositor and the real preview renderer on the same camera frame."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from skimage.color import deltaE_ciede2000, rgb2lab

from kiosk.models import ModelStore
from pipeline.faces import MtcnnFaceDetector
from pipeline.harmonize.operators import BOUNDS, IDENTITY, OperatorParams, apply
from pipeline.harmonize.preview_colour import PreviewColour
from pipeline.matting import SelfieSegmenter
from pipeline.placement import placed_alpha, scaled_subject
from pipeline.types import Artwork, ArtworkSpec, Framing, NormBox
from streaming.preview import PreviewModels, PreviewRenderer, preview_size, render_offline

CAMERA_SIZE = (640, 480)
ROOM = (128, 128, 128)
BOX = NormBox(0.3, 0.3, 0.7, 1.0)


def night_painting(artwork_id: str = "test-night") -> Artwork:
    """A strongly coloured "painting", a night scene: a photo's light and texture (scikit-image's
    coffee cup) in deep blues. Flat synthetic colour is no painting to the harmony score."""
    grey = cv2.resize(skimage.data.coffee(), (960, 720), interpolation=cv2.INTER_AREA).mean(axis=2, keepdims=True)
    image = np.clip(grey * np.array([0.2, 0.3, 0.8], np.float32), 0, 255).astype(np.uint8)
    spec = ArtworkSpec(id=artwork_id, title="Night", artist="Tests", year="2026", boxes={f: BOX for f in Framing})
    return Artwork(spec=spec, image=image)


@pytest.fixture(scope="module")
def camera_frame(astronaut) -> np.ndarray:
    """The astronaut in a grey room, cut by the frame's bottom edge like a bust."""
    frame = np.empty((CAMERA_SIZE[1], CAMERA_SIZE[0], 3), np.uint8)
    frame[:] = ROOM
    person = cv2.resize(astronaut, (400, 400), interpolation=cv2.INTER_AREA)
    frame[80:, 120:520] = person
    return frame


@pytest.fixture(scope="module")
def preview_settings(session_settings):
    # Loading the preview's models sets torch's threads for the process: give the rest of the suite its own.
    threads = torch.get_num_threads()
    yield session_settings
    torch.set_num_threads(threads)


def renderer(settings, artwork: Artwork, *, clock=lambda: 0.0, **changes) -> PreviewRenderer:
    """A renderer from the preview's own models with ``changes`` to the settings; time stands still
    unless ``clock`` moves it (one face detection, one colour fit)."""
    settings = dataclasses.replace(settings, **changes)
    store = ModelStore(settings)
    # The preview's own networks and harmonizer, on a clock the test controls.
    return PreviewRenderer(
        settings,
        artwork,
        portrait_segmenter=SelfieSegmenter(store.selfie_interpreter()),
        landscape_segmenter=SelfieSegmenter(store.selfie_interpreter(landscape=True)),
        face_detector=MtcnnFaceDetector(*store.mtcnn_states()),
        harmonizer=PreviewModels(settings, store).harmonizer,
        clock=clock,
    )


def frames(renderer: PreviewRenderer, frame: np.ndarray, count: int) -> np.ndarray:
    for _ in range(count):
        preview = render_offline(renderer, frame)
    return preview


def subject_colour_distance(preview: np.ndarray, canvas: np.ndarray, photo: np.ndarray, photo_mask: np.ndarray) -> float:
    """CIEDE2000 between the mean colours of the preview's and the photo's subject, over the pixels
    inside both (the preview's subject: where it differs from the bare artwork), edges left out."""
    kernel = np.ones((5, 5), np.uint8)
    inside = cv2.erode(np.any(preview != canvas, axis=2).astype(np.uint8), kernel).astype(bool)
    inside &= cv2.erode(photo_mask.astype(np.uint8), kernel).astype(bool)
    assert inside.sum() > 2000, "the visitor must be in both pictures"
    ours, theirs = rgb2lab(preview[inside][None]).mean(axis=1), rgb2lab(photo[inside][None]).mean(axis=1)
    return float(deltaE_ciede2000(ours, theirs)[0])


def test_the_preview_shows_the_subject_in_the_photos_colours(preview_settings, compositor, camera_frame):
    artwork = night_painting()
    capture = compositor(camera_frame, artwork)
    assert capture.harmonized is not None
    # The photo at the preview's size, and where its subject is (its layer's alpha, placed).
    size = preview_size(CAMERA_SIZE[0], CAMERA_SIZE[1], artwork.width, artwork.height)
    canvas = cv2.resize(artwork.image, size, interpolation=cv2.INTER_AREA)
    _, alpha = scaled_subject(camera_frame, capture.subject, capture.placement)
    mask = placed_alpha(alpha, capture.placement.rect, (artwork.width, artwork.height))
    photo = cv2.resize(capture.image, size, interpolation=cv2.INTER_AREA)
    photo_mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA) > 0.95

    corrected = renderer(preview_settings, artwork)
    plain = renderer(preview_settings, artwork, preview_colour=False)
    # Faces on the first frame, the colour fitted after the second, applied from the third.
    with_colour, without = frames(corrected, camera_frame, 3), frames(plain, camera_frame, 3)
    assert corrected.colour_refreshes == 1 and plain.colour_refreshes == 0
    assert corrected.colour is not None and not corrected.colour.is_identity

    before = subject_colour_distance(without, canvas, photo, photo_mask)
    after = subject_colour_distance(with_colour, canvas, photo, photo_mask)
    print(f"preview subject vs photo subject, CIEDE2000 of mean colours: {before:.1f} without, {after:.1f} with the correction")
    assert before > 4.0, "the capture's correction must be visible on this painting"
    assert after < 0.5 * before


def test_switched_off_the_preview_keeps_the_cameras_colours(preview_settings, camera_frame):
    artwork = night_painting()
    moments = iter(np.arange(0.0, 100.0, 1.0))  # a second per call: every refit would be due
    off = renderer(preview_settings, artwork, clock=lambda: next(moments), preview_colour=False)
    uncorrected = renderer(preview_settings, artwork, harmonize=False)  # nothing to preview: captures are not corrected
    for _ in range(4):
        preview, reference = render_offline(off, camera_frame), render_offline(uncorrected, camera_frame)
        np.testing.assert_array_equal(preview, reference)
    assert off.colour is None and off.colour_refreshes == 0 and uncorrected.colour_refreshes == 0
    assert np.any(preview != cv2.resize(artwork.image, preview.shape[1::-1], interpolation=cv2.INTER_AREA)), "the visitor is shown"


def test_another_artwork_gets_its_own_correction_at_once(preview_settings, camera_frame):
    night = night_painting()
    renderer_ = renderer(preview_settings, night)
    frames(renderer_, camera_frame, 3)
    night_colour = renderer_.colour
    assert night_colour is not None and renderer_.colour_refreshes == 1

    gold = dataclasses.replace(night, image=np.ascontiguousarray(night.image[..., ::-1]))  # the blues turned gold
    renderer_.set_artwork(gold)
    assert renderer_.colour is None, "the night's correction is not shown on another painting"
    render_offline(renderer_, camera_frame)  # time stands still, yet the refit runs for the new painting
    assert renderer_.colour_refreshes == 2 and renderer_.colour is not None
    assert renderer_.colour.params != night_colour.params


def random_correction(rng: np.random.Generator) -> OperatorParams:
    def within(bounds: tuple[float, float]) -> float:
        return float(rng.uniform(*bounds))

    return OperatorParams(
        wb_gains=(within(BOUNDS.gain), within(BOUNDS.gain), within(BOUNDS.gain)),
        exposure_ev=within(BOUNDS.exposure_ev),
        contrast=within(BOUNDS.contrast),
        pivot_l=within((30.0, 70.0)),
        shadows=within(BOUNDS.tone_offset),
        highlights=within(BOUNDS.tone_offset),
        saturation=within(BOUNDS.saturation),
    )


def test_the_tables_give_the_harmonizers_own_correction(astronaut):
    photo = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(5)
    for _ in range(8):
        params = random_correction(rng)
        exact = np.clip(np.rint(apply(photo, params) * 255.0), 0, 255).astype(np.uint8)
        difference = deltaE_ciede2000(rgb2lab(exact), rgb2lab(PreviewColour.of(params)(photo)))
        # 8-bit rounding on the way: far below what anyone sees (about 2 is just noticeable).
        assert difference.mean() < 1.0 and np.percentile(difference, 99) < 3.0, (params, difference.mean())
    np.testing.assert_array_equal(PreviewColour.of(IDENTITY)(photo), photo)

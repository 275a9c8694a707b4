"""The capture pipeline on real photos and real models: what a visitor would see in the result."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from kiosk.artworks import ArtworkLibrary, load_artwork
from pipeline.errors import NoPersonError
from pipeline.matting import estimate_foreground
from pipeline.placement import composite_layer, plan_placement, scaled_subject
from pipeline.subject import CLOSE_UP_MIN_RATIO, FULL_BODY_MAX_RATIO, classify_framing
from pipeline.types import Artwork, ArtworkSpec, Framing, NormBox, Subject


@pytest.fixture(scope="module")
def meadow(session_settings) -> Artwork:
    return load_artwork(
        ArtworkLibrary(session_settings).source("demo-golden-meadow"), max_pixels=session_settings.max_image_pixels
    )


def _inner(box, shrink: float = 0.2) -> tuple[slice, slice]:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * shrink, (y1 - y0) * shrink
    return slice(int(y0 + dy), int(y1 - dy)), slice(int(x0 + dx), int(x1 - dx))


@pytest.mark.parametrize("photo_name", ["astronaut", "grace_hopper"])
def test_modnet_alpha_is_solid_over_the_face_and_empty_in_the_corners(request, compositor, photo_name):
    photo = request.getfixturevalue(photo_name)
    faces = compositor._face_detector.detect(photo)
    alpha = compositor._segmenter(photo)
    assert alpha.shape == photo.shape[:2] and alpha.dtype == np.float32
    assert len(faces) == 1
    assert alpha[_inner(faces[0].box)].min() > 0.9
    for corner in (alpha[:32, :32], alpha[:32, -32:]):
        assert corner.max() < 0.1
    # The bottom corners of these portraits are clothing or background; the top ones are room.


def test_astronaut_is_one_person_framed_half_body(compositor, astronaut, meadow):
    result = compositor(astronaut, meadow)
    assert result.subject.people == 1
    assert result.subject.framing is Framing.HALF_BODY
    assert set(result.timings.ms) >= {"segmentation", "subject", "foreground", "placement"}
    assert set(result.timings.beside) == {"faces"}  # found beside the matting


def test_grace_hopper_is_one_person_framed_close_up(compositor, grace_hopper, meadow):
    result = compositor(grace_hopper, meadow)
    assert result.subject.people == 1
    assert result.subject.framing is Framing.CLOSE_UP


def test_result_has_the_artworks_resolution_and_the_subject_lies_inside_its_box(
    compositor, astronaut, meadow
):
    result = compositor(astronaut, meadow)
    assert result.image.shape == meadow.image.shape
    changed = np.any(result.image != meadow.image, axis=2)
    rows, cols = np.nonzero(changed)
    bx0, by0, bx1, by1 = result.placement.box
    assert changed.sum() > 0.2 * (bx1 - bx0) * (by1 - by0), "the visitor should fill a good part of the box"
    assert bx0 <= cols.min() and cols.max() < bx1 and by0 <= rows.min() and rows.max() < by1
    # A bust is cut by the box's bottom edge, which here is the painting's bottom edge.
    assert result.placement.rect[3] == by1 == meadow.height


def test_outside_the_subjects_alpha_the_composite_equals_the_artwork(compositor, grace_hopper, meadow):
    result = compositor(grace_hopper, meadow)
    _, alpha = scaled_subject(grace_hopper, result.subject, result.placement)
    covered = np.zeros(meadow.image.shape[:2], bool)
    x0, y0, x1, y1 = result.placement.rect
    covered[y0:y1, x0:x1] = alpha > 0
    assert np.array_equal(result.image[~covered], meadow.image[~covered])
    # And the subject really is there: the face region shows the photo, not the painting.
    assert np.abs(result.image[covered].astype(int) - meadow.image[covered]).mean() > 20


def test_two_people_are_counted_and_placed_as_one_subject(compositor, astronaut, meadow):
    pair = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    result = compositor(np.ascontiguousarray(pair), meadow)
    assert result.subject.people == 2
    x0, _, x1, _ = result.subject.box
    assert x0 < 100 and x1 > pair.shape[1] - 100, "both people lie in the one subject box"
    rx0, _, rx1, _ = result.placement.rect
    bx0, _, bx1, _ = result.placement.box
    assert bx0 <= rx0 and rx1 <= bx1


def test_a_photo_without_a_person_is_refused(compositor, meadow):
    with pytest.raises(NoPersonError, match="no person found"):
        compositor(skimage.data.coffee(), meadow)
    with pytest.raises(NoPersonError):
        compositor(np.full((480, 640, 3), 128, np.uint8), meadow)


def _spec(box: NormBox) -> ArtworkSpec:
    return ArtworkSpec("t", "T", "A", "2000", {framing: box for framing in Framing})


def _subject(box: tuple[int, int, int, int], framing: Framing, photo_shape=(1000, 800)) -> Subject:
    alpha = np.zeros(photo_shape, np.float32)
    x0, y0, x1, y1 = box
    alpha[y0:y1, x0:x1] = 1.0
    return Subject(
        faces=[], alpha=alpha, box=box, framing=framing, reaches_bottom=False, face_to_silhouette=0.1
    )


def test_full_body_subject_stands_on_the_box_bottom_centred_and_fitted():
    artwork = Artwork(_spec(NormBox(0.4, 0.2, 0.6, 0.9)), np.zeros((1000, 2000, 3), np.uint8))
    subject = _subject((300, 100, 500, 900), Framing.FULL_BODY)  # 200 x 800: tall, thin
    placement = plan_placement(subject, artwork)
    assert placement.box == (800, 200, 1200, 900)
    x0, y0, x1, y1 = placement.rect
    assert y1 == 900 and y1 - y0 == 700, "height-limited: fills the box height, feet on its bottom"
    assert x1 - x0 == 175 and (x0 + x1) / 2 == pytest.approx(1000, abs=1)
    assert placement.scale == pytest.approx(700 / 800)


def test_wide_subject_is_limited_by_the_box_width():
    artwork = Artwork(_spec(NormBox(0.25, 0.0, 0.75, 1.0)), np.zeros((400, 400, 3), np.uint8))
    subject = _subject((0, 600, 800, 1000), Framing.HALF_BODY)  # 800 x 400: a wide group
    placement = plan_placement(subject, artwork)
    x0, y0, x1, y1 = placement.rect
    assert (x0, x1) == (100, 300) and (y0, y1) == (300, 400)


def test_composite_keeps_the_artwork_exact_where_alpha_is_zero():
    rng = np.random.default_rng(1)
    art = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    artwork = Artwork(_spec(NormBox(0.25, 0.25, 0.75, 1.0)), art)
    subject = _subject((100, 100, 300, 500), Framing.HALF_BODY, photo_shape=(600, 400))
    fg = np.full((600, 400, 3), 7, np.uint8)
    placement = plan_placement(subject, artwork)
    out = composite_layer(art, *scaled_subject(fg, subject, placement), placement.rect)
    painted = np.any(out != art, axis=2)
    assert painted.any()
    x0, y0, x1, y1 = plan_placement(subject, artwork).rect
    outside = np.ones(painted.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert not painted[outside].any()
    assert (out[y0:y1, x0:x1] == 7).all()


@pytest.mark.parametrize(
    ("ratio", "reaches_bottom", "expected"),
    [
        (0.10, True, Framing.FULL_BODY),
        (FULL_BODY_MAX_RATIO - 0.01, True, Framing.FULL_BODY),
        (FULL_BODY_MAX_RATIO + 0.01, True, Framing.HALF_BODY),
        (0.22, False, Framing.FULL_BODY),  # feet and floor visible
        (CLOSE_UP_MIN_RATIO - 0.01, True, Framing.HALF_BODY),
        (CLOSE_UP_MIN_RATIO, True, Framing.CLOSE_UP),
        (0.6, True, Framing.CLOSE_UP),
    ],
)
def test_framing_rule(ratio, reaches_bottom, expected):
    assert classify_framing(ratio, reaches_bottom) is expected


def test_foreground_estimation_removes_the_old_backgrounds_colour_from_the_edge():
    size = 400
    yy, xx = np.mgrid[:size, :size]
    distance = np.hypot(xx - size / 2, yy - size / 2)
    alpha = np.clip((120 - distance) / 10 + 0.5, 0, 1).astype(np.float32)
    skin = np.array([190, 130, 100], np.float32)
    green_wall = np.array([20, 210, 40], np.float32)
    photo = np.rint(alpha[..., None] * skin + (1 - alpha[..., None]) * green_wall).astype(np.uint8)
    foreground = estimate_foreground(photo, alpha)
    band = (alpha > 0.1) & (alpha < 0.9)
    green_excess = foreground[band][:, 1].astype(float) - foreground[band][:, 0]
    assert green_excess.mean() < (skin[1] - skin[0]) + 10, (
        "edge pixels keep the skin's colour, not the wall's"
    )
    assert np.array_equal(foreground[alpha >= 1.0], photo[alpha >= 1.0])

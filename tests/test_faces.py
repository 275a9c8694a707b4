"""MTCNN face detector on public sample images (scikit-image, matplotlib) and synthetic ones."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from kiosk.harmonize import SubjectFaces
from pipeline.blur import wide_blur
from pipeline.face_regions import face_mask, faces_restored, lost_faces
from pipeline.faces import MtcnnFaceDetector, non_max_suppression
from pipeline.types import Face

# The astronaut's face in skimage.data.astronaut() (512 x 512), checked by eye: the detector
# must put the whole box inside this region, and it must be face-sized.
ASTRONAUT_FACE_REGION = (160.0, 40.0, 290.0, 200.0)
# Grace Hopper's face in matplotlib's grace_hopper.jpg (512 wide x 600 high), under the cap's peak.
GRACE_HOPPER_FACE_REGION = (150.0, 90.0, 380.0, 360.0)


@pytest.fixture(scope="module")
def states(models_dir: Path) -> dict[str, dict]:
    return {
        name: torch.load(models_dir / f"{name}.pt", map_location="cpu", weights_only=True)
        for name in ("pnet", "rnet", "onet")
    }


def make_detector(states: dict[str, dict], **options) -> MtcnnFaceDetector:
    return MtcnnFaceDetector(states["pnet"], states["rnet"], states["onet"], **options)


@pytest.fixture(scope="module")
def detector(states: dict[str, dict]) -> MtcnnFaceDetector:
    return make_detector(states)


def box_inside(box: tuple[float, ...], region: tuple[float, ...]) -> bool:
    return region[0] <= box[0] < box[2] <= region[2] and region[1] <= box[1] < box[3] <= region[3]


def point_inside(point: np.ndarray, box: tuple[float, ...]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def assert_plausible_face(face: Face) -> None:
    """Landmarks in the box, in a face's layout: eyes above the nose above the mouth."""
    assert face.landmarks.shape == (5, 2)
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert all(point_inside(point, face.box) for point in face.landmarks)
    assert left_eye[0] < right_eye[0]
    assert mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_finds_the_astronaut(detector: MtcnnFaceDetector, astronaut: np.ndarray) -> None:
    faces = detector.detect(astronaut)

    assert len(faces) == 1
    face = faces[0]
    assert face.probability > 0.95
    assert box_inside(face.box, ASTRONAUT_FACE_REGION)
    assert 80 < face.height < 160
    assert_plausible_face(face)


def test_finds_grace_hopper(detector: MtcnnFaceDetector, grace_hopper: np.ndarray) -> None:
    faces = detector.detect(grace_hopper)

    assert len(faces) == 1
    assert faces[0].probability > 0.95
    assert box_inside(faces[0].box, GRACE_HOPPER_FACE_REGION)
    assert 150 < faces[0].height < 270
    assert_plausible_face(faces[0])


def test_no_face_in_a_noisy_gradient(detector: MtcnnFaceDetector) -> None:
    rows, cols = np.mgrid[0:480, 0:640]
    gradient = np.stack([cols / 640 * 255, rows / 480 * 255, (rows + cols) / 1120 * 255], axis=-1)
    noise = np.random.default_rng(0).normal(0.0, 8.0, gradient.shape)
    image = np.clip(gradient + noise, 0, 255).astype(np.uint8)

    assert detector.detect(image) == []


def test_no_face_in_a_coffee_cup(detector: MtcnnFaceDetector) -> None:
    assert detector.detect(skimage.data.coffee()) == []


def test_several_faces_come_most_probable_first(
    detector: MtcnnFaceDetector, astronaut: np.ndarray, grace_hopper: np.ndarray
) -> None:
    image = np.zeros((600, 1024, 3), dtype=np.uint8)
    image[:512, :512] = astronaut
    image[:, 512:] = grace_hopper

    faces = detector.detect(image)

    assert len(faces) == 2
    probabilities = [face.probability for face in faces]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(p >= detector.min_probability for p in probabilities)
    centres_x = sorted(face.centre[0] for face in faces)
    assert centres_x[0] < 512 < centres_x[1]


def scaled_onto_canvas(
    image: np.ndarray, factor: float, canvas_size: tuple[int, int], offset: tuple[int, int]
) -> np.ndarray:
    """``image`` resized by ``factor`` and pasted at (x, y) ``offset`` on a grey canvas (w, h)."""
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, None, fx=factor, fy=factor, interpolation=interpolation)
    canvas = np.full((canvas_size[1], canvas_size[0], 3), 120, dtype=np.uint8)
    x, y = offset
    canvas[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return canvas


def test_finds_a_60_px_face_in_a_large_photo(detector: MtcnnFaceDetector, astronaut: np.ndarray) -> None:
    # The astronaut's face is about 113 px high; shrunk by 0.53 it is about 60 px in a 1280 x 720
    # photo, which the default detect_long_side shrinks further to about 45 px.
    factor, offset = 0.53, (500, 100)
    photo = scaled_onto_canvas(astronaut, factor, (1280, 720), offset)

    faces = detector.detect(photo)

    assert len(faces) == 1
    assert 45 < faces[0].height < 80
    expected_region = tuple(edge * factor + offset[i % 2] for i, edge in enumerate(ASTRONAUT_FACE_REGION))
    assert box_inside(faces[0].box, expected_region)
    assert_plausible_face(faces[0])


def test_min_face_size_is_in_photo_pixels(states: dict[str, dict], astronaut: np.ndarray) -> None:
    photo = scaled_onto_canvas(astronaut, 0.53, (1280, 720), (500, 100))

    assert make_detector(states, min_face_size_px=120).detect(photo) == []


def test_results_are_in_original_pixels_whatever_the_detection_size(
    states: dict[str, dict], astronaut: np.ndarray
) -> None:
    # Not square, so the two axes are scaled back by (slightly) different ratios.
    factor, offset = 2.0, (400, 50)
    photo = scaled_onto_canvas(astronaut, factor, (1700, 1100), offset)
    native = make_detector(states, detect_long_side=1700).detect(photo)
    shrunk = make_detector(states, detect_long_side=500).detect(photo)

    assert len(native) == len(shrunk) == 1
    face_height = native[0].height
    assert 180 < face_height < 300
    assert np.allclose(native[0].box, shrunk[0].box, atol=0.06 * face_height)
    assert np.allclose(native[0].landmarks, shrunk[0].landmarks, atol=0.04 * face_height)
    expected_region = tuple(edge * factor + offset[i % 2] for i, edge in enumerate(ASTRONAUT_FACE_REGION))
    assert box_inside(shrunk[0].box, expected_region)
    assert_plausible_face(shrunk[0])


def test_grey_photo_given_as_rgb(detector: MtcnnFaceDetector, astronaut: np.ndarray) -> None:
    grey = cv2.cvtColor(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)

    faces = detector.detect(grey)

    assert len(faces) == 1
    assert box_inside(faces[0].box, ASTRONAUT_FACE_REGION)


def test_accepts_a_non_contiguous_view(detector: MtcnnFaceDetector, astronaut: np.ndarray) -> None:
    faces = detector.detect(astronaut[:, ::-1])  # mirrored

    assert len(faces) == 1
    mirrored_region = (512 - ASTRONAUT_FACE_REGION[2], 40.0, 512 - ASTRONAUT_FACE_REGION[0], 200.0)
    assert box_inside(faces[0].box, mirrored_region)


@pytest.mark.parametrize("shape", [(0, 0, 3), (8, 8, 3), (11, 400, 3), (400, 11, 3)])
def test_images_too_small_for_a_face(detector: MtcnnFaceDetector, shape: tuple[int, ...]) -> None:
    assert detector.detect(np.full(shape, 128, dtype=np.uint8)) == []


def test_image_that_becomes_too_small_when_shrunk(states: dict[str, dict]) -> None:
    # 2000 x 20 shrinks to 960 x 10: shorter than P-Net's 12 px window.
    detector = make_detector(states, min_face_size_px=12)

    assert detector.detect(np.full((20, 2000, 3), 128, dtype=np.uint8)) == []


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((64, 64), dtype=np.uint8),
        np.zeros((64, 64, 4), dtype=np.uint8),
        np.zeros((64, 64, 3), dtype=np.float32),
    ],
    ids=["grey", "rgba", "float"],
)
def test_refuses_images_that_are_not_rgb_uint8(detector: MtcnnFaceDetector, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect(image)


def test_weights_must_match_the_networks(states: dict[str, dict]) -> None:
    with pytest.raises(RuntimeError):
        MtcnnFaceDetector(states["rnet"], states["rnet"], states["onet"])


def test_nms_union_keeps_boxes_that_overlap_little() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
    scores = np.array([0.9, 0.8, 0.95, 0.7])

    # IoU: box 2 with box 0 is 1/3, box 1 with box 0 is 81/119, box 1 with box 2 is 54/146.
    assert non_max_suppression(boxes, scores, 0.5).tolist() == [2, 0, 3]
    assert non_max_suppression(boxes, scores, 0.3).tolist() == [2, 3]


def test_nms_min_removes_a_box_inside_another() -> None:
    boxes = np.array([[0, 0, 20, 20], [2, 2, 10, 10]], dtype=float)
    scores = np.array([0.9, 0.95])

    # Intersection over union is only 64/400, but over the smaller box it is 1.
    assert non_max_suppression(boxes, scores, 0.7, mode="union").tolist() == [1, 0]
    assert non_max_suppression(boxes, scores, 0.7, mode="min").tolist() == [1]


def test_nms_of_nothing() -> None:
    assert non_max_suppression(np.empty((0, 4)), np.empty(0), 0.5).tolist() == []


def test_a_face_a_stage_made_unrecognisable_is_noticed_and_given_back(
    detector: MtcnnFaceDetector, astronaut: np.ndarray
) -> None:
    before = detector.detect(astronaut)
    assert len(before) == 1
    # A stage gone too far: the whole picture smeared into flat dark paint, the face with it.
    painted = (cv2.blur(astronaut, (41, 41)) // 3).astype(np.uint8)
    assert lost_faces(before, detector.detect(painted)) == before

    restored = faces_restored(painted, astronaut, before, share=1.0)
    assert lost_faces(before, detector.detect(restored)) == []
    # Only the face got its own pixels back: far from its ellipse the stage's change stays.
    outside = face_mask(astronaut.shape[:2], before) == 0
    assert outside.mean() > 0.7
    assert np.array_equal(restored[outside], painted[outside])
    assert faces_restored(painted, astronaut, before, share=0.0).tobytes() == painted.tobytes()


def test_a_face_counts_as_lost_when_the_search_that_found_it_misses_it() -> None:
    def face(x: float) -> Face:
        return Face(box=(x, 10.0, x + 20.0, 36.0), probability=0.95, landmarks=np.zeros((5, 2)))

    marginal, clear = face(0.0), face(100.0)
    # The whole-image search found the marginal face; the closer search found both.
    before = SubjectFaces(whole=[marginal], close=[marginal, clear])
    assert before.all == [marginal, clear]
    assert before.missing_from(SubjectFaces(whole=[marginal], close=[marginal, clear])) == []
    assert before.missing_from(SubjectFaces(whole=[], close=[marginal, clear])) == [marginal]
    assert before.missing_from(SubjectFaces(whole=[marginal], close=[marginal])) == [clear]
    assert before.missing_from(SubjectFaces(whole=[], close=[])) == [marginal, clear]  # each once


@pytest.mark.parametrize("sigma", [1.5, 9.0, 54.0])
def test_wide_blur_is_the_gaussian_blur_it_stands_for(sigma):
    """A close-up face's feather is blurred at a reduced size; the map must come out as the full-size
    blur would make it, edges included (a face cut by the photo's edge)."""
    rng = np.random.default_rng(3)
    image = np.zeros((420, 640), np.float32)
    cv2.ellipse(image, (60, 200), (150, 190), 0, 0, 360, 1.0, thickness=-1)  # reaches past the left edge
    cv2.ellipse(image, (420, 260), (90, 120), 0, 0, 360, 1.0, thickness=-1)
    image += 0.05 * rng.random(image.shape, np.float32)
    exact = cv2.GaussianBlur(image, (0, 0), sigma)
    assert np.abs(wide_blur(image, sigma) - exact).max() < 0.01


def test_a_face_the_looks_greyed_gets_its_colour_back_and_nothing_else_changes():
    """The capture pipeline's last check: a face made greyer than both its own colour and the
    painting's gets its own pixels back (and the rest of the subject keeps the looks' change)."""
    from pipeline.face_regions import face_colour_kept, greyed_faces
    from pipeline.harmonize.palette import mean_chroma

    original = np.full((400, 300, 3), (70, 90, 150), np.uint8)  # a blue jacket
    cv2.ellipse(original, (150, 120), (60, 80), 0, 0, 360, (205, 150, 120), thickness=-1)  # warm skin
    alpha = np.ones(original.shape[:2], np.float32)
    face = Face(box=(100.0, 50.0, 200.0, 190.0), probability=0.99, landmarks=np.zeros((5, 2)))
    grey = cv2.cvtColor(cv2.cvtColor(original, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    greyed = (0.2 * original + 0.8 * grey).astype(np.uint8)  # what a cast crossing the skin's colour does

    skin = (slice(90, 150), slice(125, 175))
    ones = np.ones((60, 50), np.float32)
    own, muted = mean_chroma(original[skin], ones), mean_chroma(greyed[skin], ones)
    vivid_painting = own + 10.0
    assert greyed_faces([face], original, greyed, alpha, vivid_painting) == [face]
    kept, restored = face_colour_kept(greyed, original, alpha, [face], vivid_painting)
    assert restored == 1
    assert mean_chroma(kept[skin], ones) > own - 1.0 > muted
    assert np.array_equal(kept[380:, :], greyed[380:, :]), "far from the face the looks' change stays"

    # A painting as grey as the greyed face allows it: nothing is given back.
    unchanged, restored = face_colour_kept(greyed, original, alpha, [face], muted - 1.0)
    assert restored == 0 and unchanged is greyed

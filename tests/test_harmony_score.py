"""Harmony score on photos shipped in packages: the shipped model, its range, its ranking of an
original photo above synthetic composites of it, determinism, and the crop-shaped product call."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from pipeline.harmonize.score import FEATURE_NAMES, HarmonyScorer, ReferenceFeatures
from pipeline.harmonize.synthetic import perturb_region
from web.score_words import harmony_in_words

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "pipeline/harmonize/models/harmony_score.npz"
SEEDS = range(4)


@pytest.fixture(scope="module")
def scorer() -> HarmonyScorer:
    with np.load(MODEL) as weights:
        return HarmonyScorer(weights)


@pytest.fixture(scope="module")
def photos(grace_hopper: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "astronaut": np.ascontiguousarray(skimage.data.astronaut()),
        "chelsea": np.ascontiguousarray(skimage.data.chelsea()),
        "coffee": np.ascontiguousarray(skimage.data.coffee()),
        "grace_hopper": np.ascontiguousarray(grace_hopper),
    }


def ellipse_mask(shape: tuple[int, ...], centre=(0.5, 0.5), radii=(0.3, 0.22)) -> np.ndarray:
    """A 0/1 ellipse, a stand-in for an object mask that cuts through the photo's content."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((yy / h - centre[0]) / radii[0]) ** 2 + ((xx / w - centre[1]) / radii[1]) ** 2 <= 1.0
    return inside.astype(np.uint8)


def score_of(scorer: HarmonyScorer, image: np.ndarray, mask: np.ndarray) -> float:
    alpha = mask.astype(np.float32)
    return scorer(image, alpha, scorer.describe_reference(image, 1.0 - alpha))


def perturbed_copies(photos: dict[str, np.ndarray], name: str) -> list[np.ndarray]:
    image = photos[name]
    mask = ellipse_mask(image.shape)
    others = [p for n, p in sorted(photos.items()) if n != name]
    copies = []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        copies.append(perturb_region(image, mask, others[seed % len(others)], rng)[0])
    return copies


def test_shipped_model_loads_and_is_small(scorer: HarmonyScorer) -> None:
    assert MODEL.stat().st_size <= 200_000
    with np.load(MODEL) as weights:
        assert tuple(weights["feature_names"].tolist()) == FEATURE_NAMES
        assert weights["feature_mean"].shape == (len(FEATURE_NAMES),)


def test_scores_lie_in_the_unit_interval(scorer: HarmonyScorer, photos: dict[str, np.ndarray]) -> None:
    for name, image in photos.items():
        mask = ellipse_mask(image.shape)
        for candidate in [image, *perturbed_copies(photos, name)]:
            score = score_of(scorer, candidate, mask)
            assert isinstance(score, float)
            assert 0.0 <= score <= 1.0


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "grace_hopper"])
def test_original_photo_scores_above_its_perturbed_copies(scorer: HarmonyScorer, photos, name: str) -> None:
    image = photos[name]
    mask = ellipse_mask(image.shape)
    original = score_of(scorer, image, mask)
    perturbed = [score_of(scorer, copy, mask) for copy in perturbed_copies(photos, name)]
    assert all(original > p for p in perturbed), (original, perturbed)


def test_blending_back_toward_the_original_raises_the_score(scorer: HarmonyScorer, photos: dict[str, np.ndarray]) -> None:
    """Blending a synthetic composite back toward its original raises the score on average."""
    gains = []
    for name, image in photos.items():
        mask = ellipse_mask(image.shape)
        for copy in perturbed_copies(photos, name):
            half = np.clip(np.rint((copy.astype(np.float32) + image) / 2.0), 0, 255).astype(np.uint8)
            scores = [score_of(scorer, x, mask) for x in (copy, half, image)]
            gains.append(np.diff(scores))
    gains = np.array(gains)
    assert (gains.mean(axis=0) > 0).all(), gains
    assert (gains.sum(axis=1) > 0).all()


def test_output_is_deterministic(scorer: HarmonyScorer, photos: dict[str, np.ndarray]) -> None:
    image = perturbed_copies(photos, "coffee")[0]
    alpha = ellipse_mask(image.shape).astype(np.float32)
    reference = scorer.describe_reference(image, 1.0 - alpha)
    again = scorer.describe_reference(image.copy(), (1.0 - alpha).copy())
    first = scorer.features(image, alpha, reference)
    np.testing.assert_array_equal(first, scorer.features(image.copy(), alpha.copy(), again))
    assert scorer(image, alpha, reference) == scorer(image, alpha, again)
    assert first.shape == (len(FEATURE_NAMES),)


def test_crop_of_a_larger_artwork_with_a_soft_alpha(scorer: HarmonyScorer, photos: dict[str, np.ndarray]) -> None:
    """The product's call: a reference described once on a large artwork, a big crop, a soft alpha."""
    artwork = cv2.resize(photos["coffee"], (1920, 1080), interpolation=cv2.INTER_CUBIC)
    subject = cv2.resize(photos["grace_hopper"], (600, 900), interpolation=cv2.INTER_CUBIC)
    alpha_small = cv2.GaussianBlur(ellipse_mask((900, 600), radii=(0.45, 0.4)).astype(np.float32), (0, 0), 3)
    crop = artwork[40:1040, 660:1660].copy()
    alpha = np.zeros(crop.shape[:2], np.float32)
    alpha[50:950, 200:800] = alpha_small
    canvas = np.zeros(crop.shape, np.float32)
    canvas[50:950, 200:800] = subject
    mixed = crop * (1 - alpha[..., None]) + canvas * alpha[..., None]
    crop = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    reference = scorer.describe_reference(artwork, np.ones(artwork.shape[:2], np.float32))
    assert isinstance(reference, ReferenceFeatures)
    score = scorer(crop, alpha, reference)
    assert 0.0 <= score <= 1.0
    # a foreground covering the whole crop has no contour and no surroundings: those cues are
    # missing (NaN, the model takes its training mean) and there is still a score
    whole = np.ones(crop.shape[:2], np.float32)
    features = scorer.features(crop, whole, reference)
    missing = [n.startswith(("bnd_", "tex_")) for n in FEATURE_NAMES]
    assert np.isnan(features[missing]).all() and np.isfinite(features[~np.array(missing)]).all()
    assert 0.0 <= scorer(crop, whole, reference) <= 1.0


def test_bad_inputs_are_refused(scorer: HarmonyScorer, photos: dict[str, np.ndarray]) -> None:
    image = photos["chelsea"]
    alpha = ellipse_mask(image.shape).astype(np.float32)
    reference = scorer.describe_reference(image, 1.0 - alpha)
    with pytest.raises(ValueError):
        scorer(image.astype(np.float32), alpha, reference)
    with pytest.raises(ValueError):
        scorer(image, alpha[:-1], reference)
    with pytest.raises(ValueError):
        scorer(image, np.zeros_like(alpha), reference)
    with pytest.raises(ValueError):
        HarmonyScorer({"feature_names": np.array(["something else"])})


def test_auc_by_ranks_matches_pairwise_counting() -> None:
    spec = importlib.util.spec_from_file_location("train_harmony_score", ROOT / "bench/train_harmony_score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(3)
    pos = np.round(rng.normal(0.5, 1.0, 57), 1)  # rounded: ties on purpose
    neg = np.round(rng.normal(0.0, 1.0, 43), 1)
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert module.auc(pos, neg) == pytest.approx(pairs)
    assert module.auc([1.0, 2.0], [0.0]) == 1.0
    assert module.auc([0.0], [1.0, 2.0]) == 0.0


# --- On paintings: the painterly part of the score ----------------------------------------------


def generated_painting(seed: int = 4, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """An impressionist "painting": a scene (an evening sky over a green field) laid down in short,
    thick strokes whose colours scatter around the scene's."""
    rng = np.random.default_rng(seed)
    width, height = size
    t = np.linspace(0, 1, height)[:, None, None]
    scene = np.repeat((1 - t) * np.array([40, 70, 160]) + t * np.array([240, 170, 80]), width, axis=1)
    horizon = int(height * 0.6)
    field = np.linspace(0, 1, height - horizon)[:, None, None]
    scene[horizon:] = (1 - field) * np.array([90, 140, 60]) + field * np.array([40, 70, 30])
    canvas = np.clip(scene, 0, 255).astype(np.uint8)
    for _ in range(9000):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        angle = rng.normal(0.3 if y < horizon else -0.8, 0.35)
        length = rng.uniform(5, 16)
        end = (int(x + length * np.cos(angle)), int(y + length * np.sin(angle)))
        colour = np.clip(scene[y, x] + rng.normal(0, 28, 3), 0, 255)
        cv2.line(canvas, (x, y), end, tuple(int(c) for c in colour), thickness=int(rng.integers(2, 5)))
    return canvas


@pytest.fixture(scope="module")
def painting_scene(grace_hopper: np.ndarray):
    """The painting, a person-sized subject (grace_hopper) and its soft alpha, placed in the middle."""
    painting = generated_painting()
    subject = cv2.resize(grace_hopper, (240, 340), interpolation=cv2.INTER_AREA)
    alpha_small = cv2.GaussianBlur(ellipse_mask((340, 240), radii=(0.48, 0.45)).astype(np.float32), (0, 0), 2)
    layer = np.zeros_like(painting)
    alpha = np.zeros(painting.shape[:2], np.float32)
    layer[100:440, 200:440], alpha[100:440, 200:440] = subject, alpha_small
    return painting, layer, alpha


def over(painting: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return np.clip(np.rint(a * layer + (1 - a) * painting), 0, 255).astype(np.uint8)


def score_in(scorer: HarmonyScorer, painting: np.ndarray, composite: np.ndarray, alpha: np.ndarray) -> float:
    return scorer(composite, alpha, scorer.describe_reference(painting, (alpha == 0).astype(np.float32)))


def test_a_pasted_photo_scores_low_in_a_painting_and_painted_in_clearly_higher(scorer, painting_scene, models_dir) -> None:
    """The same subject, pasted as photographed, then repainted by the real stylization networks
    (the painted look's stage at full strength, the style from the paint around it)."""
    from kiosk.models import ModelStore
    from kiosk.settings import Settings
    from pipeline.stylize import StylizeParams, painting_style, stylize

    painting, layer, alpha = painting_scene
    pasted = over(painting, layer, alpha)
    network = ModelStore(Settings.load(environ={"ARTBOOTH_MODELS_DIR": str(models_dir)})).stylizer()
    style = painting_style(network, painting, (alpha == 0).astype(np.float32))
    painted = stylize(network, pasted, alpha, (), style, StylizeParams(strength=1.0, face_protection=0.0)).image
    paste_score, painted_score = score_in(scorer, painting, pasted, alpha), score_in(scorer, painting, painted, alpha)
    assert paste_score < 0.3, paste_score
    assert painted_score > paste_score + 0.15, (paste_score, painted_score)
    assert harmony_in_words(paste_score) in ("Looks pasted on", "Noticeably pasted-in")
    assert harmony_in_words(painted_score) in ("Blends in", "Blends in very well")


def test_giving_the_subject_the_paints_palette_or_texture_raises_the_score(scorer, painting_scene) -> None:
    """Network-free: the pasted photo; its colours moved to the paint's (palette); those colours
    with the paint's brushwork laid over them (palette and texture). Both score clearly higher."""
    painting, layer, alpha = painting_scene
    inside = alpha > 0.5
    lab, paint_lab = (cv2.cvtColor(x.astype(np.float32) / 255, cv2.COLOR_RGB2LAB) for x in (layer, painting))
    recoloured = lab.copy()
    for channel in range(3):  # histogram match, channel by channel, to the paint under the subject
        values, reference = lab[..., channel][inside], np.sort(paint_lab[..., channel][inside])
        ranks = np.argsort(np.argsort(values)) / (len(values) - 1)
        recoloured[..., channel][inside] = reference[np.rint(ranks * (len(reference) - 1)).astype(int)]
    detail = paint_lab - cv2.GaussianBlur(paint_lab, (0, 0), 3.0)
    brushed = cv2.GaussianBlur(recoloured, (0, 0), 3.0) + detail

    def rgb(lab_image: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(cv2.cvtColor(lab_image, cv2.COLOR_LAB2RGB) * 255), 0, 255).astype(np.uint8)

    scores = [score_in(scorer, painting, over(painting, x, alpha), alpha) for x in (layer, rgb(recoloured), rgb(brushed))]
    assert min(scores[1:]) > scores[0] + 0.15, scores


def test_on_photos_the_painterly_part_agrees_with_the_photographic_one(scorer, photos) -> None:
    """A photo's own object shares its surroundings' palette and grain; a recoloured copy does not.
    So around photos the painterly part, too, ranks the original above its perturbed copies, and
    the score (both parts joined) keeps the ranking checked above."""
    for name, image in photos.items():
        alpha = ellipse_mask(image.shape).astype(np.float32)
        original = scorer.parts(image, alpha, scorer.describe_reference(image, 1.0 - alpha))[1]
        copies = [scorer.parts(c, alpha, scorer.describe_reference(c, 1.0 - alpha))[1] for c in perturbed_copies(photos, name)]
        assert all(original > c for c in copies), (name, original, copies)


@pytest.mark.parametrize(
    ("score", "words"),
    [(0.95, "Blends in very well"), (0.4, "Blends in"), (0.2, "Noticeably pasted-in"), (0.02, "Looks pasted on"), (None, "Not scored")],
)
def test_scores_in_words(score, words) -> None:
    assert harmony_in_words(score) == words

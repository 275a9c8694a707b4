"""The shipped learned-targets model: loads, is well-formed, deterministic, and helps on synthetic composites.

No shared data: the composites are made from photos shipped with scikit-image, with the
benchmark's own perturbation (pipeline.harmonize.synthetic.perturb_region).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

import pipeline.harmonize
from pipeline.harmonize.learned import LearnedTargets
from pipeline.harmonize.stats import STAT_NAMES, RegionStats, region_stats
from pipeline.harmonize.synthetic import perturb_region

MODEL_PATH = Path(pipeline.harmonize.__file__).resolve().parent / "models" / "target_stats.npz"
MEAN_IDX = [STAT_NAMES.index(n) for n in ("l_mean", "a_mean", "b_mean")]


def load_weights() -> dict[str, np.ndarray]:
    with np.load(MODEL_PATH) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.fixture(scope="module")
def model() -> LearnedTargets:
    return LearnedTargets(load_weights())


def package_photo(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A package photo at the benchmark's scale (256 px on the long side) and a central elliptical 0/1 mask."""
    image = getattr(skimage.data, name)()
    height, width = image.shape[:2]
    scale = 256 / max(height, width)
    size = (round(width * scale), round(height * scale))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.ellipse(mask, (size[0] // 2, int(size[1] * 0.55)), (int(size[0] * 0.28), int(size[1] * 0.33)), 0, 0, 360, 1, -1)
    return image, mask


@pytest.fixture(scope="module")
def photos() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {name: package_photo(name) for name in ("astronaut", "chelsea", "coffee")}


def test_shipped_model_loads_and_is_small(model: LearnedTargets) -> None:
    assert MODEL_PATH.stat().st_size < 200 * 1024
    assert model.members >= 1
    for name in ("x_mean", "x_std", "y_mean", "y_std", "w0", "b0"):
        assert name in load_weights()


def test_rejects_incomplete_weights() -> None:
    weights = load_weights()
    del weights["x_std"]
    with pytest.raises(ValueError):
        LearnedTargets(weights)


def test_predictions_beat_the_perturbed_stats(model: LearnedTargets, photos) -> None:
    """Over several seeds and colour sources, predictions are nearer the true stats than the composite's."""
    predicted_error, composite_error = [], []
    for seed in range(4):
        for name, (image, mask) in photos.items():
            truth = region_stats(image, mask).as_array()
            for source_name in photos:
                if source_name == name:
                    continue
                rng = np.random.default_rng([seed, len(name), len(source_name)])
                composite, _ = perturb_region(image, mask, photos[source_name][0], rng)
                foreground = region_stats(composite, mask)
                background = region_stats(composite, 1 - mask)
                predicted = model(foreground, background).as_array()
                predicted_error.append(np.linalg.norm(predicted[MEAN_IDX] - truth[MEAN_IDX]))
                composite_error.append(np.linalg.norm(foreground.as_array()[MEAN_IDX] - truth[MEAN_IDX]))
    assert len(predicted_error) == 24
    assert np.mean(predicted_error) < np.mean(composite_error), (np.mean(predicted_error), np.mean(composite_error))


def test_outputs_are_well_formed(model: LearnedTargets) -> None:
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(200):
        mean = rng.uniform(0, 100)
        lo, hi = sorted(rng.uniform(-60, 60, 2))
        l_std, a_mean, b_mean, a_std, b_std = rng.uniform(0, 60), *rng.uniform(-100, 100, 2), *rng.uniform(0, 60, 2)
        cases.append([mean + lo, mean, mean + hi, l_std, a_mean, b_mean, a_std, b_std])
    # degenerate regions: flat, black, white, saturated
    cases += [
        [50, 50, 50, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [100, 100, 100, 0, 0, 0, 0, 0],
        [10, 60, 95, 30, 120, -120, 40, 40],
    ]
    stats = [RegionStats.from_array(np.array(c, dtype=float)) for c in cases]
    for fg in stats[::7]:
        for bg in stats[::11]:
            out = model(fg, bg)
            values = out.as_array()
            assert np.all(np.isfinite(values))
            assert 0.0 <= out.l_p10 <= out.l_mean <= out.l_p90 <= 100.0
            assert out.l_std > 0 and out.a_std > 0 and out.b_std > 0
            assert -128.0 <= out.a_mean <= 127.0 and -128.0 <= out.b_mean <= 127.0


def test_rejects_non_finite_inputs(model: LearnedTargets) -> None:
    good = RegionStats(20, 50, 80, 20, 0, 0, 5, 5)
    bad = RegionStats(20, float("nan"), 80, 20, 0, 0, 5, 5)
    with pytest.raises(ValueError):
        model(bad, good)


def test_deterministic(photos) -> None:
    image, mask = photos["chelsea"]
    composite, _ = perturb_region(image, mask, photos["coffee"][0], np.random.default_rng(3))
    foreground, background = region_stats(composite, mask), region_stats(composite, 1 - mask)
    first, second = LearnedTargets(load_weights()), LearnedTargets(load_weights())
    a = first(foreground, background)
    assert a == first(foreground, background) == second(foreground, background)
    batch = first.predict_arrays(np.stack([foreground.as_array()] * 3), np.stack([background.as_array()] * 3))
    # a batch goes through BLAS, whose rounding may depend on a row's position: equal to ~1e-12
    np.testing.assert_allclose(batch, np.stack([a.as_array()] * 3), rtol=1e-12, atol=1e-9)

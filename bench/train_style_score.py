"""Fit the painterly part of the harmony score (pipeline/harmonize/style_score.py StyleModel).

Training composites, made here from shared data (no network, no stylization):
  positives  paint moved within its own painting: a person's silhouette filled with the painting's
             own paint from elsewhere in it (what a perfectly painted-in subject looks like, seams
             included, since the style relations skip the seam); and the person painted in
             without a network: their colours histogram-matched to that paint's (L, a and b each;
             a and b then half-way to the paint's own, so that the colours stay the painting's
             combinations) and their fine detail replaced by the paint's (the person's low
             frequencies plus the moved paint's high frequencies): a recognisable person in the
             painting's palette and brushwork;
  negatives  the photographed person pasted there as is, and once more with its colours moved to
             the painting's (a full Lab mean/std transfer: the painting's palette on a photo's
             texture, what colour and light alone can do: not painted in).
Paintings: ../shared/data/paintings (at 720 px high, as bench/people_in_paintings.py uses them).
People: ../shared/data/matting (5 photos with true alpha mattes; not the people of
bench/score_calibration.py), each at several sizes and places.
The painterly composites (../shared/data/painterly) are on other paintings and are not used here:
bench/score_calibration.py reports on them as unseen paintings.

The features are the product's (pipeline.harmonize.score.all_features on the crop that
bench/score_calibration.py scores), the model a logistic regression on StyleModel's four inputs
(L2-penalised Newton steps, in numpy). Printed: leave-one-painting-out AUC and accuracy, the
per-input means per class, and the fitted ``StyleModel(...)`` to paste into style_score.py.

    .venv/bin/python bench/train_style_score.py [--data DIR]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harmonization import auc  # noqa: E402
from bench.score_calibration import scored_crop  # noqa: E402
from pipeline.harmonize.score import all_features, describe_reference  # noqa: E402
from pipeline.harmonize.stats import from_lab, region_stats, to_lab  # noqa: E402
from pipeline.harmonize.synthetic import lab_transfer  # noqa: E402
from pipeline.harmonize.style_score import MODEL_INPUTS, model_inputs  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared/data"
PAINTING_HEIGHT = 720
# The person's height as a share of the painting's, and the horizontal centre.
PLACEMENTS = ((0.75, 0.5), (0.6, 0.3), (0.45, 0.7))
L2 = 0.5
# Painting a person in without a network: detail finer than this (painting pixels) comes from the paint.
PAINT_DETAIL_SIGMA = 3.0
SEED = 11


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def paintings(data: Path) -> dict[str, np.ndarray]:
    with (data / "paintings/index.csv").open() as fh:
        files = [row["file"] for row in csv.DictReader(fh)]
    found = {}
    for name in files:
        image = read_rgb(data / "paintings" / name)
        scale = PAINTING_HEIGHT / image.shape[0]
        found[name] = cv2.resize(image, (round(image.shape[1] * scale), PAINTING_HEIGHT), interpolation=cv2.INTER_AREA)
    return found


def people(data: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    found = []
    for alpha_path in sorted((data / "matting").glob("*_alpha.png")):
        photo = read_rgb(alpha_path.with_name(alpha_path.name.replace("_alpha.png", ".jpg")))
        alpha = cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        ys, xs = np.nonzero(alpha > 0.05)
        box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        found.append((photo[box[1] : box[3], box[0] : box[2]], alpha[box[1] : box[3], box[0] : box[2]]))
    return found


def place(painting: np.ndarray, person: np.ndarray, alpha: np.ndarray, height_share: float, centre: float):
    """The person scaled and placed standing on the painting's bottom edge: (layer, mask) at the painting's size."""
    height, width = painting.shape[:2]
    scale = min(height * height_share / person.shape[0], width * 0.9 / person.shape[1])
    size = (max(1, round(person.shape[1] * scale)), max(1, round(person.shape[0] * scale)))
    person, alpha = cv2.resize(person, size, interpolation=cv2.INTER_AREA), cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    x0 = int(np.clip(round(width * centre - size[0] / 2), 0, width - size[0]))
    y0 = height - size[1]
    layer, mask = np.zeros_like(painting), np.zeros((height, width), np.float32)
    layer[y0 : y0 + size[1], x0 : x0 + size[0]] = person
    mask[y0 : y0 + size[1], x0 : x0 + size[0]] = alpha
    return layer, mask


def moved_paint(painting: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The painting shifted (wrapping) by at least a third of its size: paint from elsewhere under the mask."""
    height, width = painting.shape[:2]
    dy = int(rng.integers(height // 3, 2 * height // 3))
    dx = int(rng.integers(width // 3, 2 * width // 3))
    return np.roll(painting, (dy, dx), axis=(0, 1))


def colour_matched(layer: np.ndarray, mask: np.ndarray, painting: np.ndarray) -> np.ndarray:
    """The layer with its Lab mean and spread moved to the painting's."""
    moved = from_lab(lab_transfer(to_lab(layer), region_stats(layer, mask), region_stats(painting, 1.0 - mask)))
    return np.clip(np.rint(moved * 255.0), 0, 255).astype(np.uint8)


def painted_person(layer: np.ndarray, mask: np.ndarray, paint: np.ndarray) -> np.ndarray:
    """The person in ``paint``'s palette (per-channel Lab histogram match inside the mask) and
    brushwork (their shapes below PAINT_DETAIL_SIGMA, the paint's detail above it)."""
    person, source = to_lab(layer), to_lab(paint)
    inside = mask > 0.5
    matched = person.copy()
    for channel in range(3):
        values, reference = person[..., channel][inside], np.sort(source[..., channel][inside])
        ranks = np.argsort(np.argsort(values)) / max(len(values) - 1, 1)
        matched[..., channel][inside] = reference[np.rint(ranks * (len(reference) - 1)).astype(int)]
    matched[..., 1:] = (matched[..., 1:] + source[..., 1:]) / 2.0
    shapes = cv2.GaussianBlur(matched, (0, 0), PAINT_DETAIL_SIGMA)
    detail = source - cv2.GaussianBlur(source, (0, 0), PAINT_DETAIL_SIGMA)
    return np.clip(np.rint(from_lab(shapes + detail) * 255.0), 0, 255).astype(np.uint8)


def blend(painting: np.ndarray, layer: np.ndarray, mask: np.ndarray) -> np.ndarray:
    a = mask[..., None]
    return np.clip(np.rint(a * layer + (1.0 - a) * painting), 0, 255).astype(np.uint8)


def style_inputs(composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
    reference = describe_reference(composite, (mask <= 0).astype(np.float32))
    return model_inputs(all_features(*scored_crop(composite, mask), reference)[1])


def dataset(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, labels 1 = paint, painting index) over every painting, person and placement."""
    rng = np.random.default_rng(SEED)
    rows, labels, groups = [], [], []
    persons = people(data)
    for index, painting in enumerate(paintings(data).values()):
        for person, alpha in persons:
            for height_share, centre in PLACEMENTS:
                layer, mask = place(painting, person, alpha, height_share, centre)
                paint = moved_paint(painting, mask, rng)
                sources = (
                    (0, layer),
                    (0, colour_matched(layer, mask, painting)),
                    (1, paint),
                    (1, painted_person(layer, mask, paint)),
                )
                for label, source in sources:
                    rows.append(style_inputs(blend(painting, source, mask), mask))
                    labels.append(label)
                    groups.append(index)
    return np.array(rows), np.array(labels), np.array(groups)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """Weights and bias of an L2-penalised logistic regression (bias unpenalised), by Newton steps;
    the classes weigh the same (0.5 means as likely painted in as pasted)."""
    design = np.hstack([x, np.ones((len(x), 1))])
    theta = np.zeros(design.shape[1])
    penalty = np.diag([l2] * x.shape[1] + [0.0])
    sample = np.where(y == 1, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1)) * len(y)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-design @ theta))
        gradient = design.T @ (sample * (p - y)) + penalty @ theta
        hessian = design.T @ (design * (sample * p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    x, y, groups = dataset(args.data)
    fill = np.nanmean(x, axis=0)
    x = np.where(np.isfinite(x), x, fill)
    print(f"{len(y)} composites ({int(y.sum())} paint: moved, or a person painted in; {int((1 - y).sum())} people pasted, half colour-matched)")
    print(f"{'input':<24}{'pasted':>10}{'paint':>10}")
    for name, pasted, paint in zip(MODEL_INPUTS, x[y == 0].mean(axis=0), x[y == 1].mean(axis=0)):
        print(f"{name:<24}{pasted:>10.3f}{paint:>10.3f}")
    held_scores = np.zeros(len(y))
    for group in np.unique(groups):
        weights, bias = fit_logistic(x[groups != group], y[groups != group])
        held_scores[groups == group] = 1.0 / (1.0 + np.exp(-(x[groups == group] @ weights + bias)))
    print(f"leave-one-painting-out: AUC {auc(held_scores[y == 1], held_scores[y == 0]):.3f}, "
          f"accuracy at 0.5 {((held_scores >= 0.5) == y).mean():.3f}")
    weights, bias = fit_logistic(x, y)
    print("StyleModel(weights=(" + ", ".join(f"{w:.3f}" for w in weights) + f"), bias={bias:.3f}, fill=("
          + ", ".join(f"{f:.3f}" for f in fill) + "))")


if __name__ == "__main__":
    main()

"""Train the harmony score's photographic part (pipeline/harmonize/score.py): real photos against
composites. (Its painterly part is fitted by bench/train_style_score.py.)

Positives are the real photos of the training records (``Record.held_out`` False); negatives
are their synthetic composites (bench.harmony_data.synthetic_composites, TRAIN_SEEDS_PER_RUN
seeds derived from --seed) and the dataset's own composites (kind=composite, not held out).
The reference region of every image is its background (1 - mask); the foreground is its mask.

The classifier is a small MLP on the standardized features: an ensemble of ENSEMBLE networks
with HIDDEN ReLU units each, trained jointly by full-batch Adam in numpy with an L2 penalty and
saved as one network whose output averages the members' logits. The classes are balanced in
the loss: real photos weigh 1/2, synthetic composites 1/4 and the dataset's composites 1/4.
The output is calibrated by Platt scaling fitted on out-of-fold logits (5 folds, drawn by
source record so that a photo and its synthetic composites share a fold) under the same
weights, and the Platt parameters are folded into the saved output layer: the model outputs
the calibrated probability directly, 0.5 meaning "as likely real as composite" under that
50/50 mix.

Printed, all on held-out records (id divisible by 4), measured in this run:
* AUC real vs synthetic composites (held-out real photos and their composites, seed 7);
* AUC real vs the dataset's own composites;
* the baseline: AUC of the plain Lab-distance cue (minus the Delta E between the foreground's
  and the background's mean Lab);
* calibration: reliability per score decile (mean score vs fraction real, balanced weights),
  Brier score and expected calibration error;
* variant picking: synthetic composites blended back toward the real photo (t = 0 .. 1) and
  past it (t = 1.25, 1.5: the cast reversed); the mean score per t, how often the score rises
  with t up to the real photo, and how often the real photo is the variant it picks;
* feature importance: the drop in held-out AUC when a group's (or one feature's) columns are
  permuted among the held-out rows.

The held-out records were never trained on, but their figures were looked at while the
feature set and the few hyperparameters below were chosen. A run takes about 10 minutes on
one core (feature extraction dominates); --features-cache keeps the features between runs.

    .venv/bin/python bench/train_harmony_score.py [--data DIR] [--seed S] [--out PATH] [--features-cache NPZ]

``auc(scores_pos, scores_neg)`` is importable for the benchmark.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    # The fits are small: on a shared machine BLAS threads only contend (3x slower here), and
    # one thread keeps the floating-point results the same from run to run.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harmony_data import DEFAULT_DATA, Record, read_index, synthetic_composites  # noqa: E402
from pipeline.harmonize.score import (  # noqa: E402
    FEATURE_NAMES,
    HarmonyScorer,
    describe_reference,
    harmony_features,
)
from pipeline.harmonize.stats import region_stats  # noqa: E402

DEFAULT_OUT = ROOT / "pipeline/harmonize/models/harmony_score.npz"
EVAL_SEED = 7
TRAIN_SEEDS_PER_RUN = 2  # synthetic composites per training photo
FOLDS = 5
HIDDEN = 16  # ReLU units per ensemble member
ENSEMBLE = 5
L2 = 1e-3  # weight penalty (the loss is a weighted mean over samples)
STEPS = 1500  # full-batch Adam steps
LEARNING_RATE = 0.01
FEATURE_CLIP = 5.0  # standardized features are clipped to +-this
CLASS_WEIGHTS = {"real": 0.5, "synthetic": 0.25, "composite": 0.25}
BLEND_STEPS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)  # 1 = the real photo; above 1 overshoots

FEATURE_GROUPS = {
    "illuminant (gray-world, bright-pixel, gray-edge, shades-of-gray)": ("gw_", "bp_", "ge_", "sog_", "illum_"),
    "luminance zones and shape": ("d_l_p", "log_l_std", "d_l_skew", "d_l_kurt", "d_clip", "l_hist"),
    "chroma shape and hue": ("ab_hist", "log_chroma", "d_hue"),
    "boundary continuity": ("bnd_",),
    "sharpness and grain": ("tex_",),
}


# ----------------------------------------------------------------------------- metrics


def auc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting 1/2.

    Rank statistic (Mann-Whitney U) with mid-ranks for ties; numpy only.
    """
    pos = np.asarray(scores_pos, dtype=np.float64).ravel()
    neg = np.asarray(scores_neg, dtype=np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("both classes need at least one score")
    values = np.concatenate([pos, neg])
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    # mid-ranks: every run of equal values gets the mean of its 1-based positions
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mid = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mid, ends - starts)
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def reliability(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray, bins: int = 10):
    """Rows (lo, hi, weight share, mean score, fraction real) per score bin; Brier; ECE."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    total = weights.sum()
    rows, ece = [], 0.0
    for b in range(bins):
        sel = index == b
        w = weights[sel].sum()
        if w <= 0:
            rows.append((edges[b], edges[b + 1], 0.0, float("nan"), float("nan")))
            continue
        mean_score = float((scores[sel] * weights[sel]).sum() / w)
        frac_real = float((labels[sel] * weights[sel]).sum() / w)
        rows.append((edges[b], edges[b + 1], float(w / total), mean_score, frac_real))
        ece += w / total * abs(mean_score - frac_real)
    brier = float(((scores - labels) ** 2 * weights).sum() / total)
    return rows, brier, float(ece)


# ----------------------------------------------------------------------------- features


def image_features(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The score's features of a photo whose foreground is ``mask`` and reference its background."""
    alpha = mask.astype(np.float32)
    return harmony_features(image, alpha, describe_reference(image, 1.0 - alpha))


def lab_distance(image: np.ndarray, mask: np.ndarray) -> float:
    """Baseline cue: Delta E between the foreground's and the background's mean Lab."""
    fg = region_stats(image, mask.astype(np.float32))
    bg = region_stats(image, 1.0 - mask.astype(np.float32))
    return float(np.linalg.norm([fg.l_mean - bg.l_mean, fg.a_mean - bg.a_mean, fg.b_mean - bg.b_mean]))


def blend(composite: np.ndarray, original: np.ndarray, t: float) -> np.ndarray:
    """The composite moved by ``t`` toward the original (t > 1 goes past it)."""
    mixed = composite.astype(np.float32) * (1.0 - t) + original.astype(np.float32) * t
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def collect(records: list[Record], seed: int, log) -> dict[str, np.ndarray]:
    """Features of every set the run needs; ids identify the source record of each row."""
    rng = np.random.default_rng(seed)
    train_seeds = [int(s) for s in rng.integers(1000, 1_000_000, size=TRAIN_SEEDS_PER_RUN)]
    while EVAL_SEED in train_seeds:  # the evaluation seed never makes training composites
        train_seeds = [s + 1 for s in train_seeds]
    sets: dict[str, list] = {}

    def add(name: str, record: Record, features: np.ndarray, extra: float = float("nan")) -> None:
        sets.setdefault(name, []).append((int(record.id), features, extra))

    started = time.perf_counter()
    for held_out in (False, True):
        split = "test" if held_out else "train"
        real = [r for r in records if r.kind == "real" and r.held_out == held_out]
        composites = [r for r in records if r.kind == "composite" and r.held_out == held_out]
        for record in real:
            image, mask = record.load()
            add(f"{split}_real", record, image_features(image, mask), lab_distance(image, mask))
        for record in composites:
            image, mask = record.load()
            add(f"{split}_composite", record, image_features(image, mask), lab_distance(image, mask))
        if held_out:
            for record, image, mask, composite, _ in synthetic_composites(real, EVAL_SEED):
                add("test_synthetic", record, image_features(composite, mask), lab_distance(composite, mask))
                for t in BLEND_STEPS:
                    if t in (0.0, 1.0):
                        continue
                    add(f"test_blend_{t:.2f}", record, image_features(blend(composite, image, t), mask))
        else:
            for s in train_seeds:
                for record, _, mask, composite, _ in synthetic_composites(real, s):
                    add("train_synthetic", record, image_features(composite, mask))
        log(f"features of the {split} split: {time.perf_counter() - started:.0f} s")
    out: dict[str, np.ndarray] = {}
    for name, rows in sets.items():
        out[f"{name}_ids"] = np.array([r[0] for r in rows])
        out[name] = np.stack([r[1] for r in rows])
        out[f"{name}_labdist"] = np.array([r[2] for r in rows])
    return out


# ----------------------------------------------------------------------------- model


def standardize_params(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.nanmean(x, axis=0)
    scale = np.nanstd(x, axis=0)
    scale[scale < 1e-9] = 1.0
    return mean, scale


def standardized(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z = (x - mean) / scale
    return np.clip(np.nan_to_num(z, nan=0.0), -FEATURE_CLIP, FEATURE_CLIP)


def fit_logistic(z: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression by Newton's method (the intercept is not penalised)."""
    n, d = z.shape
    w = w * (n / w.sum())
    design = np.hstack([z, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -40, 40)))
        grad = design.T @ (w * (p - y)) + penalty * theta
        hess = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-9:
            break
    return theta[:-1], float(theta[-1])


def fit_platt(logits: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    coef, bias = fit_logistic(logits[:, None], y, w, l2=0.0)
    return float(coef[0]), bias


def fit_mlp(z: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """ENSEMBLE one-hidden-layer ReLU networks trained side by side (full-batch Adam, weighted
    cross-entropy + L2), returned as one network whose output is the mean of their logits."""
    rng = np.random.default_rng(seed)
    n, d = z.shape
    m, h = ENSEMBLE, HIDDEN
    w = w / w.sum()
    params = {
        "w0": rng.normal(0.0, np.sqrt(2.0 / d), (d, m * h)),
        "b0": np.zeros(m * h),
        "w1": rng.normal(0.0, np.sqrt(1.0 / h), (m, h)),
        "b1": np.zeros(m),
    }
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    beta1, beta2 = 0.9, 0.999
    for step in range(1, STEPS + 1):
        pre = z @ params["w0"] + params["b0"]
        hidden = np.maximum(pre, 0.0).reshape(n, m, h)
        logits = np.einsum("nmh,mh->nm", hidden, params["w1"]) + params["b1"]
        p = 1.0 / (1.0 + np.exp(-np.clip(logits, -40, 40)))
        g = (p - y[:, None]) * w[:, None]  # d loss / d logit, per member
        grads = {
            "w1": np.einsum("nm,nmh->mh", g, hidden) + L2 * params["w1"],
            "b1": g.sum(axis=0),
        }
        g_hidden = (g[:, :, None] * params["w1"][None]).reshape(n, m * h) * (pre > 0)
        grads["w0"] = z.T @ g_hidden + L2 * params["w0"]
        grads["b0"] = g_hidden.sum(axis=0)
        for k, grad in grads.items():
            first, second = moments[k]
            first *= beta1
            first += (1 - beta1) * grad
            second *= beta2
            second += (1 - beta2) * grad * grad
            update = first / (1 - beta1**step) / (np.sqrt(second / (1 - beta2**step)) + 1e-8)
            params[k] -= LEARNING_RATE * update
    return {
        "w0": params["w0"],
        "b0": params["b0"],
        "w1": (params["w1"] / m).reshape(m * h, 1),
        "b1": np.array([params["b1"].mean()]),
    }


def mlp_logit(layers: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    hidden = np.maximum(z @ layers["w0"] + layers["b0"], 0.0)
    return (hidden @ layers["w1"] + layers["b1"])[:, 0]


def training_matrix(f: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    parts = [("train_real", "real", 1.0), ("train_synthetic", "synthetic", 0.0), ("train_composite", "composite", 0.0)]
    x = np.concatenate([f[name] for name, _, _ in parts])
    y = np.concatenate([np.full(len(f[name]), label) for name, _, label in parts])
    w = np.concatenate([np.full(len(f[name]), CLASS_WEIGHTS[kind] / len(f[name])) for name, kind, _ in parts])
    # composites of the dataset are separate records; synthetic ones share their photo's id
    groups = np.concatenate([f[f"{name}_ids"] + (10_000_000 if kind == "composite" else 0) for name, kind, _ in parts])
    return x, y, w * len(y), groups


def train(f: dict[str, np.ndarray], seed: int, log) -> dict[str, np.ndarray]:
    x, y, w, groups = training_matrix(f)
    rng = np.random.default_rng(seed)
    unique = np.unique(groups)
    fold_of = dict(zip(unique.tolist(), rng.permutation(len(unique)) % FOLDS))
    folds = np.array([fold_of[g] for g in groups.tolist()])
    member_seeds = rng.integers(0, 2**31, size=FOLDS + 1)
    started = time.perf_counter()
    oof = np.zeros(len(y))
    for k in range(FOLDS):
        train_rows, test_rows = folds != k, folds == k
        mean, scale = standardize_params(x[train_rows])
        layers = fit_mlp(standardized(x[train_rows], mean, scale), y[train_rows], w[train_rows], int(member_seeds[k]))
        oof[test_rows] = mlp_logit(layers, standardized(x[test_rows], mean, scale))
    a, b = fit_platt(oof, y, w)
    log(f"out-of-fold fits: {time.perf_counter() - started:.0f} s; "
        f"Platt scaling on out-of-fold logits: p = sigmoid({a:.3f} * logit {b:+.3f})")
    mean, scale = standardize_params(x)
    layers = fit_mlp(standardized(x, mean, scale), y, w, int(member_seeds[FOLDS]))
    return {
        "feature_names": np.array(FEATURE_NAMES),
        "feature_mean": mean.astype(np.float32),
        "feature_scale": scale.astype(np.float32),
        "feature_clip": np.array(FEATURE_CLIP, dtype=np.float32),
        "w0": layers["w0"].astype(np.float32),
        "b0": layers["b0"].astype(np.float32),
        "w1": (layers["w1"] * a).astype(np.float32),
        "b1": (layers["b1"] * a + b).astype(np.float32),
        "platt": np.array([a, b], dtype=np.float32),
    }


# ----------------------------------------------------------------------------- report


def group_columns(prefixes: tuple[str, ...]) -> list[int]:
    return [i for i, n in enumerate(FEATURE_NAMES) if n.startswith(prefixes)]


def report(scorer: HarmonyScorer, f: dict[str, np.ndarray], seed: int) -> None:
    p = {name: scorer.probability(f[name]) for name in ("test_real", "test_synthetic", "test_composite")}
    real, syn, comp = p["test_real"], p["test_synthetic"], p["test_composite"]
    base_real, base_syn, base_comp = (-f[f"{n}_labdist"] for n in ("test_real", "test_synthetic", "test_composite"))
    print()
    print(f"Held-out records: {len(real)} real photos, {len(syn)} synthetic composites (seed {EVAL_SEED}), "
          f"{len(comp)} dataset composites")
    print()
    print("| held-out AUC | harmony score | baseline: -Delta E of Lab means | target |")
    print("|---|---|---|---|")
    print(f"| real vs synthetic composites | {auc(real, syn):.3f} | {auc(base_real, base_syn):.3f} | >= 0.80 |")
    print(f"| real vs dataset composites | {auc(real, comp):.3f} | {auc(base_real, base_comp):.3f} | >= 0.70 |")
    both = np.concatenate([syn, comp])
    print(f"| real vs all composites (pooled) | {auc(real, both):.3f} | "
          f"{auc(base_real, np.concatenate([base_syn, base_comp])):.3f} | |")

    scores = np.concatenate([real, syn, comp])
    labels = np.concatenate([np.ones(len(real)), np.zeros(len(syn) + len(comp))])
    weights = np.concatenate([np.full(len(real), 0.5 / len(real)), np.full(len(syn), 0.25 / len(syn)),
                              np.full(len(comp), 0.25 / len(comp))])
    rows, brier, ece = reliability(scores, labels, weights)
    print()
    print("Calibration on held-out records, balanced like training (real 1/2, synthetic 1/4, dataset composites 1/4):")
    print("| score bin | share | mean score | fraction real |")
    print("|---|---|---|---|")
    for lo, hi, share, mean_score, frac in rows:
        if share > 0:
            print(f"| {lo:.1f}-{hi:.1f} | {share:.3f} | {mean_score:.3f} | {frac:.3f} |")
    print(f"Brier score {brier:.3f} (0.25 for a constant 0.5), expected calibration error {ece:.3f}")
    print(f"Mean score: real {real.mean():.3f}, synthetic composites {syn.mean():.3f}, "
          f"dataset composites {comp.mean():.3f}")

    # variant picking: the composite blended back toward its real photo, and past it
    steps = []
    for t in BLEND_STEPS:
        steps.append(syn if t == 0.0 else real if t == 1.0 else scorer.probability(f[f"test_blend_{t:.2f}"]))
    grid = np.stack(steps, axis=1)  # rows follow the held-out real records in order
    up_to = BLEND_STEPS.index(1.0) + 1
    rising = (np.diff(grid[:, :up_to], axis=1) > 0).all(axis=1).mean()
    ranks = np.argsort(np.argsort(grid[:, :up_to], axis=1), axis=1)
    target = np.arange(up_to)
    spearman = 1 - 6 * ((ranks - target) ** 2).sum(axis=1) / (up_to * (up_to**2 - 1))
    picked = grid.argmax(axis=1)
    print()
    print("Variant picking: each held-out synthetic composite moved toward its real photo by t (1 = the real photo,")
    print("above 1 = past it, the cast reversed); the score picks the variant it rates highest:")
    print("| t | " + " | ".join(f"{t:.2f}" for t in BLEND_STEPS) + " |")
    print("|---|" + "---|" * len(BLEND_STEPS))
    print("| mean score | " + " | ".join(f"{v:.3f}" for v in grid.mean(axis=0)) + " |")
    print("| picked | " + " | ".join(f"{(picked == i).mean():.1%}" for i in range(len(BLEND_STEPS))) + " |")
    near = (np.abs(np.array(BLEND_STEPS)[picked] - 1.0) <= 0.25).mean()
    print(f"score strictly rising from t = 0 to 1: {rising:.1%} of photos; mean Spearman(t, score) on t <= 1: "
          f"{spearman.mean():.3f}; the picked t is within 0.25 of 1: {near:.1%}")

    # importance: permute columns among the held-out rows, measure the AUC drop
    rng = np.random.default_rng(seed)
    n1, n2 = len(real), len(real) + len(syn)
    pool = np.concatenate([f["test_real"], f["test_synthetic"], f["test_composite"]])
    base = (auc(real, syn), auc(real, comp))

    def drop(cols: list[int]) -> np.ndarray:
        total = np.zeros(2)
        for _ in range(5):
            shuffled = pool.copy()
            shuffled[:, cols] = pool[rng.permutation(len(pool))][:, cols]
            pr, ps, pc = (scorer.probability(shuffled[:n1]), scorer.probability(shuffled[n1:n2]),
                          scorer.probability(shuffled[n2:]))
            total += np.array([base[0] - auc(pr, ps), base[1] - auc(pr, pc)]) / 5
        return total

    print()
    print("Feature importance: held-out AUC drop when columns are permuted among held-out rows (mean of 5):")
    print("| group | features | AUC drop synthetic | AUC drop dataset composites |")
    print("|---|---|---|---|")
    for group, prefixes in FEATURE_GROUPS.items():
        cols = group_columns(prefixes)
        d = drop(cols)
        print(f"| {group} | {len(cols)} | {d[0]:+.3f} | {d[1]:+.3f} |")
    singles = np.array([drop([i]) for i in range(len(FEATURE_NAMES))])
    top = np.argsort(-singles.sum(axis=1))[:10]
    print("Single features with the largest drops (synthetic / dataset composites): "
          + ", ".join(f"{FEATURE_NAMES[i]} {singles[i, 0]:+.3f}/{singles[i, 1]:+.3f}" for i in top))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--features-cache", type=Path, default=None,
                        help="an .npz to keep the extracted features in (reused when it matches this run)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    records = read_index(args.data)
    key = hashlib.sha256(
        repr((str(args.data.resolve()), args.seed, FEATURE_NAMES, TRAIN_SEEDS_PER_RUN, BLEND_STEPS, len(records)))
        .encode()
    ).hexdigest()[:16]
    features = None
    if args.features_cache is not None and args.features_cache.exists():
        cached = np.load(args.features_cache)
        if str(cached["key"]) == key:
            features = {name: cached[name] for name in cached.files if name != "key"}
            log(f"features from {args.features_cache}")
    if features is None:
        features = collect(records, args.seed, log)
        if args.features_cache is not None:
            np.savez(args.features_cache, key=np.array(key), **features)
    model = train(features, args.seed, log)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **model)
    log(f"model written to {args.out} ({args.out.stat().st_size} bytes)")
    with np.load(args.out) as loaded:
        scorer = HarmonyScorer(loaded)
    report(scorer, features, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train the learned harmonization targets (pipeline/harmonize/learned.py) and evaluate them.

Training data: every REAL record that is not held out (Record.held_out False), each perturbed
``--samples-per-photo`` times with pipeline.harmonize.synthetic.perturb_region (the
benchmark's protocol: another training photo's whole-image Lab statistics, then white-balance
gains), colour sources and gains drawn from one generator seeded with ``--seed``. Only
statistics are kept (foreground as it stands in the composite, background, true foreground),
plus a small random sample of foreground pixels for the loss.

Model: an ensemble of small MLPs (20 -> 64 -> 64 -> 8, GELU) that predicts the true
foreground statistics directly (the a/b means and log-spreads relative to the background's).
The loss is mostly the benchmark's own metric: each prediction is applied to the sampled
foreground pixels with the Lab mean/std transfer, converted to RGB (a differentiable copy of
OpenCV's float Lab -> RGB), and compared with the real pixels on the 0-255 scale; plus a
squared error on the standardised outputs, without which p10/p90 (which the transfer does
not use) would be left untrained. Regularised hard (dropout, input noise, weight decay, few epochs): there are only
about a thousand distinct photos, and a free network memorises background -> object.

Evaluation (``evaluate``): the held-out real records, one synthetic composite each from
bench.harmony_data.synthetic_composites(held_out, seed 7, colour sources = held_out). fMSE is
the mean over masked pixels and the 3 channels of the squared error on the 0-255 scale, per
image, then averaged over images; corrected images are rounded to uint8 like the composite.

    .venv/bin/python bench/train_harmonizer.py [--data DIR] [--seed 7] [--out PATH]
        [--samples-per-photo 6] [--evaluate-only]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harmony_data import DEFAULT_DATA, Record, read_index, synthetic_composites  # noqa: E402
from pipeline.harmonize.learned import (  # noqa: E402
    AB_RANGE,
    FEATURE_CLIP,
    FORMAT_VERSION,
    LOG_GAP_RANGE,
    LOG_STD_RANGE,
    LearnedTargets,
    encode_targets,
    features,
)
from pipeline.harmonize.stats import RegionStats, from_lab, region_stats, to_lab  # noqa: E402
from pipeline.harmonize.synthetic import lab_transfer, perturb_region  # noqa: E402

DEFAULT_OUT = ROOT / "pipeline/harmonize/models/target_stats.npz"
PIXELS_PER_SAMPLE = 256
EVAL_SEED = 7
MEAN_IDX, STD_IDX = [1, 4, 5], [3, 6, 7]
# Encoded outputs predicted relative to the background's: a_mean, b_mean, log a_std, log b_std.
REFERENCE_RELATIVE = np.array([0, 1, 1, 0, 1, 1, 0, 0], dtype=np.float64)


@dataclass(frozen=True)
class TrainConfig:
    members: int = 3
    hidden: int = 64
    depth: int = 2
    epochs: int = 15
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-2
    dropout: float = 0.3
    input_noise: float = 0.3  # gaussian noise on the standardised inputs, in training only
    mse_weight: float = 0.3  # weight of the squared error on the standardised outputs (trains p10/p90 too)


@dataclass(frozen=True)
class TrainingSet:
    foreground: np.ndarray  # (n, 8) stats of the perturbed foreground
    background: np.ndarray  # (n, 8) stats of the rest of the photo
    true: np.ndarray  # (n, 8) stats of the real foreground
    lab: np.ndarray  # (n, P, 3) float32 Lab of sampled foreground pixels of the composite
    rgb: np.ndarray  # (n, P, 3) uint8 the same pixels in the real photo
    photo: np.ndarray  # (n,) index of the source photo


def training_records(records: list[Record]) -> list[Record]:
    return [r for r in records if r.kind == "real" and not r.held_out]


def held_out_records(records: list[Record]) -> list[Record]:
    return [r for r in records if r.kind == "real" and r.held_out]


def collect(
    reals: list[Record], samples_per_photo: int, rng: np.random.Generator, log: Callable[[str], None] = print
) -> TrainingSet:
    """Statistics of ``samples_per_photo`` synthetic composites of each photo in ``reals``."""
    if len(reals) < 2:
        raise ValueError("need at least two training photos")
    fg, bg, true, lab, rgb, photo = [], [], [], [], [], []
    start = time.perf_counter()
    for i, record in enumerate(reals):
        image, mask = record.load()
        if not mask.any() or mask.all():
            continue
        # Outside the mask a composite is the photo itself, so its background stats are the photo's.
        background = region_stats(image, 1 - mask).as_array()
        truth = region_stats(image, mask).as_array()
        inside = np.flatnonzero(mask.reshape(-1))
        for _ in range(samples_per_photo):
            j = int(rng.integers(len(reals) - 1))
            j += j >= i  # never the photo itself
            colour_source, _ = reals[j].load()
            composite, _ = perturb_region(image, mask, colour_source, rng)
            fg.append(region_stats(composite, mask).as_array())
            bg.append(background)
            true.append(truth)
            chosen = rng.choice(inside, PIXELS_PER_SAMPLE, replace=len(inside) < PIXELS_PER_SAMPLE)
            lab.append(to_lab(composite.reshape(-1, 3)[chosen][None])[0])
            rgb.append(image.reshape(-1, 3)[chosen])
            photo.append(i)
        if (i + 1) % 200 == 0:
            log(f"  {i + 1}/{len(reals)} photos, {time.perf_counter() - start:.0f} s")
    return TrainingSet(
        np.array(fg), np.array(bg), np.array(true), np.array(lab, np.float32), np.array(rgb, np.uint8), np.array(photo)
    )


# --- training (torch) -----------------------------------------------------------------------

_XYZ_TO_RGB = (
    (3.240479, -1.53715, -0.498535),
    (-0.969256, 1.875991, 0.041556),
    (0.055648, -0.204043, 1.057311),
)


def torch_lab_to_rgb(lab):
    """OpenCV's float Lab -> RGB in [0, 1] (D65, sRGB), differentiable; matches cv2 to ~0.02/255."""
    import torch

    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0

    def finv(t):
        return torch.where(t > 6.0 / 29.0, t**3, (t - 16.0 / 116.0) * (3.0 * (6.0 / 29.0) ** 2))

    y = torch.where(L > 8.0, fy**3, L / 903.3)
    xyz = torch.stack([finv(fx) * 0.950456, y, finv(fz) * 1.088754], -1)
    linear = (xyz @ torch.tensor(_XYZ_TO_RGB, dtype=lab.dtype).T).clamp(0.0, 1.0)
    return torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(1e-8) ** (1 / 2.4) - 0.055, 12.92 * linear)


def torch_decode(raw):
    """torch twin of pipeline.harmonize.learned.decode_targets."""
    import torch

    mean = raw[:, 0].clamp(0.0, 100.0)
    low = torch.exp(raw[:, 6].clamp(*LOG_GAP_RANGE))
    high = torch.exp(raw[:, 7].clamp(*LOG_GAP_RANGE))
    stds = torch.exp(raw[:, 3:6].clamp(*LOG_STD_RANGE))
    return torch.stack(
        [
            (mean - low).clamp_min(0.0),
            mean,
            (mean + high).clamp_max(100.0),
            stds[:, 0],
            raw[:, 1].clamp(*AB_RANGE),
            raw[:, 2].clamp(*AB_RANGE),
            stds[:, 1],
            stds[:, 2],
        ],
        1,
    )


def pixel_loss(predicted, foreground, lab, rgb):
    """Per-sample fMSE (0-255) of the Lab mean/std transfer from ``foreground`` to ``predicted``."""
    scale = predicted[:, None, STD_IDX] / foreground[:, None, STD_IDX].clamp_min(1e-3)
    moved = (lab - foreground[:, None, MEAN_IDX]) * scale + predicted[:, None, MEAN_IDX]
    return ((torch_lab_to_rgb(moved) * 255.0 - rgb) ** 2).mean(dim=(1, 2))


def train(
    data: TrainingSet, config: TrainConfig, seed: int, log: Callable[[str], None] = print
) -> dict[str, np.ndarray]:
    """Train ``config.members`` MLPs; returns the weights in LearnedTargets' layout."""
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    x = features(data.foreground, data.background)
    offsets = REFERENCE_RELATIVE * encode_targets(data.background)
    y = encode_targets(data.true) - offsets
    x_mean, x_std = x.mean(0), np.maximum(x.std(0), 1e-6)
    y_mean, y_std = y.mean(0), np.maximum(y.std(0), 1e-6)

    def tensor(a):
        return torch.tensor(a, dtype=torch.float64)

    xn = tensor(np.clip((x - x_mean) / x_std, -FEATURE_CLIP, FEATURE_CLIP))
    yn = tensor((y - y_mean) / y_std)
    fg, lab, rgb, off = tensor(data.foreground), tensor(data.lab), tensor(data.rgb), tensor(offsets)
    ym, ys = tensor(y_mean), tensor(y_std)
    members = []
    for member in range(config.members):
        generator = torch.Generator().manual_seed(seed * 1000 + member)
        torch.manual_seed(seed * 1000 + member)
        layers, fan_in = [], x.shape[1]
        for _ in range(config.depth):
            layers += [
                torch.nn.Linear(fan_in, config.hidden),
                torch.nn.GELU(approximate="tanh"),  # the form LearnedTargets computes
                torch.nn.Dropout(config.dropout),
            ]
            fan_in = config.hidden
        layers.append(torch.nn.Linear(fan_in, 8))
        net = torch.nn.Sequential(*layers).double()
        optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.epochs)
        start = time.perf_counter()
        for epoch in range(config.epochs):
            order = torch.randperm(len(xn), generator=generator)
            total = 0.0
            for s in range(0, len(order), config.batch):
                idx = order[s : s + config.batch]
                noise = torch.randn(len(idx), xn.shape[1], generator=generator, dtype=xn.dtype)
                inputs = xn[idx] + config.input_noise * noise
                z = net(inputs)
                predicted = torch_decode(z * ys + ym + off[idx])
                loss = pixel_loss(predicted, fg[idx], lab[idx], rgb[idx]).mean()
                objective = loss / 1000.0 + config.mse_weight * ((z - yn[idx]) ** 2).sum(1).mean()
                optimiser.zero_grad()
                objective.backward()
                optimiser.step()
                total += loss.item() * len(idx)
            schedule.step()
        seconds = time.perf_counter() - start
        log(f"  member {member + 1}/{config.members}: last-epoch train fMSE {total / len(xn):.0f}, {seconds:.0f} s")
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        members.append([(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears])
    weights = {
        "version": np.array(FORMAT_VERSION),
        "x_mean": x_mean,
        "x_std": x_std,
        "y_mean": y_mean,
        "y_std": y_std,
        "y_ref": REFERENCE_RELATIVE,
    }
    for layer in range(len(members[0])):
        weights[f"w{layer}"] = np.stack([m[layer][0] for m in members])
        weights[f"b{layer}"] = np.stack([m[layer][1] for m in members])
    # float32 keeps the file small; LearnedTargets computes in float64 from these exact values.
    return {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in weights.items()}


# --- evaluation -----------------------------------------------------------------------------


def fmse(image: np.ndarray, real: np.ndarray, mask: np.ndarray) -> float:
    inside = mask > 0
    return float(((image[inside].astype(np.float64) - real[inside].astype(np.float64)) ** 2).mean())


def transferred(
    composite: np.ndarray, lab: np.ndarray, mask: np.ndarray, source: RegionStats, target: RegionStats
) -> np.ndarray:
    """``composite`` with its masked pixels moved from ``source`` to ``target`` stats, rounded to uint8."""
    rgb = np.clip(np.rint(from_lab(lab_transfer(lab, source, target)) * 255.0), 0, 255).astype(np.uint8)
    out = composite.copy()
    inside = mask > 0
    out[inside] = rgb[inside]
    return out


def evaluate(
    model: LearnedTargets, records: list[Record], seed: int = EVAL_SEED, log: Callable[[str], None] = print
) -> dict[str, float]:
    """Held-out fMSE table; returns mean fMSE per method."""
    held = held_out_records(records)
    strengths = (1.0, 0.8, 0.5)
    scores: dict[str, list[float]] = {"composite (untouched)": [], "Reinhard to background": []}
    for s in strengths:
        scores[f"learned, strength {s}"] = []
    scores["oracle true stats (ceiling)"] = []
    for _, real, mask, composite, _ in synthetic_composites(held, seed, held):
        lab = to_lab(composite)
        fg = region_stats(composite, mask)
        bg = region_stats(composite, 1 - mask)
        predicted = model(fg, bg).as_array()
        scores["composite (untouched)"].append(fmse(composite, real, mask))
        scores["Reinhard to background"].append(fmse(transferred(composite, lab, mask, fg, bg), real, mask))
        for s in strengths:
            target = RegionStats.from_array(fg.as_array() + s * (predicted - fg.as_array()))
            scores[f"learned, strength {s}"].append(fmse(transferred(composite, lab, mask, fg, target), real, mask))
        truth = region_stats(real, mask)
        scores["oracle true stats (ceiling)"].append(fmse(transferred(composite, lab, mask, fg, truth), real, mask))
    means = {name: float(np.mean(values)) for name, values in scores.items()}
    base = means["composite (untouched)"]
    log(f"held-out real records: {len(held)}, seed {seed}, colour sources from the held-out records")
    log(f"| {'method':<30} | {'fMSE':>8} | {'/ composite':>11} |")
    log(f"|{'-' * 32}|{'-' * 10}|{'-' * 13}|")
    for name, value in means.items():
        log(f"| {name:<30} | {value:8.1f} | {value / base:11.3f} |")
    return means


def load_model(path: Path) -> LearnedTargets:
    with np.load(path) as archive:
        return LearnedTargets({k: archive[k] for k in archive.files})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--samples-per-photo", type=int, default=6)
    parser.add_argument("--members", type=int, default=TrainConfig.members)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--evaluate-only", action="store_true", help="evaluate --out as it is")
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows up when redirected to a file

    records = read_index(args.data)
    if not args.evaluate_only:
        start = time.perf_counter()
        reals = training_records(records)
        print(f"collecting {args.samples_per_photo} synthetic composites of each of {len(reals)} training photos")
        data = collect(reals, args.samples_per_photo, np.random.default_rng(args.seed))
        collected = time.perf_counter()
        print(f"{len(data.true)} samples in {collected - start:.0f} s; training")
        config = TrainConfig(members=args.members, epochs=args.epochs)
        weights = train(data, config, args.seed)
        trained = time.perf_counter()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **weights)
        args.out.write_bytes(buffer.getvalue())
        print(
            f"data {collected - start:.0f} s, training {trained - collected:.0f} s; "
            f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB, "
            f"{sum(v.size for k, v in weights.items() if k[0] in 'wb')} parameters)"
        )
    evaluate(load_model(args.out), records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

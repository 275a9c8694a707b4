"""Harmonization quality: synthetic composites of real photos, harmonized and compared with the original.

For each real photo in DIR (the layout of ../shared/data/harmonization/lalonde) the masked
region is perturbed (Lab mean/std transfer from another real photo, then white-balance gains
in [0.75, 1.3] under gamma 2.2, seeded) and harmonized with the rest of the photo as its
background. Reported, against the original: MSE, fMSE (masked pixels), PSNR and CIEDE2000
(mean over masked pixels) for the untouched composite, plain Reinhard Lab transfer to the
background, and ours (fitted targets and learned targets, default variant and score-chosen
variant). For the harmony score: AUC of real photos against their synthetic composites, AUC
of real photos against the dataset's own composites, and the selection gain (fMSE of the
score-chosen variant over fMSE of the default variant).

Then, in the same run: the iHarmony4 samples (real composites with ground truth; MSE and PSNR
inside the mask against the real image, per sample, for the untouched composite and each method's
score-chosen result, and whether the product's default is no worse than untouched), and people
composed into paintings through the real pipeline (bench/people_in_paintings.py): per painting,
each face's CIELAB chroma under today's harmonizer (learned targets, the old default) and the product's
default against the plain paste, and how many faces were greyed by the benchmark's rule.

By default only records held out from training are used; pass --all for a split no model
was trained on. Figures are baselines of the same run (composite, Reinhard), so read ratios.

    .venv/bin/python bench/harmonization.py [--data DIR] [--limit N] [--people N] [--seed S] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import people_in_paintings  # noqa: E402
from bench.harmony_data import DEFAULT_DATA, read_index, synthetic_composites  # noqa: E402
from kiosk.engine import load_harmonizer  # noqa: E402
from kiosk.settings import Settings  # noqa: E402
from pipeline.harmonize.harmonizer import Harmonizer, choose, standard_variants  # noqa: E402
from pipeline.harmonize.operators import IDENTITY, apply  # noqa: E402
from pipeline.harmonize.reference import ring_around  # noqa: E402
from pipeline.harmonize.stats import from_lab, region_stats, to_lab  # noqa: E402
from pipeline.harmonize.synthetic import lab_transfer  # noqa: E402
from pipeline.types import ReferenceMode  # noqa: E402

IHARMONY = ROOT.parent / "shared/data/harmonization/iharmony4-samples"


def auc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = np.asarray(positives), np.asarray(negatives)
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def metrics(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    diff = (result.astype(np.float64) - truth.astype(np.float64)) ** 2
    mse = float(diff.mean())
    inside = mask > 0
    de = deltaE_ciede2000(rgb2lab(truth[inside][None]), rgb2lab(result[inside][None]))
    return {
        "mse": mse,
        "fmse": float(diff[inside].mean()),
        "psnr": float(10 * np.log10(255.0**2 / max(mse, 1e-10))),
        "de2000": float(de.mean()),
    }


def reinhard(composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = (mask > 0).astype(np.float32)
    moved = from_lab(lab_transfer(to_lab(composite), region_stats(composite, weights), region_stats(composite, 1 - weights)))
    out = composite.copy()
    out[mask > 0] = np.clip(np.rint(moved[mask > 0] * 255), 0, 255).astype(np.uint8)
    return out


def ring_weights(mask: np.ndarray) -> np.ndarray:
    """The product's ring around the object's bounding box, minus the object itself."""
    rows, cols = np.nonzero(mask)
    weights = ring_around(mask.shape, (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1))
    weights[mask > 0] = 0.0
    return weights if weights.sum() > 0 else (mask == 0).astype(np.float32)


class Runner:
    """Harmonizes one composite with every candidate, as the product does, with the photo's background as reference."""

    def __init__(self, harmonizer: Harmonizer) -> None:
        self.harmonizer = harmonizer

    def references(self, image: np.ndarray, mask: np.ndarray):
        return {
            ReferenceMode.ARTWORK: self.harmonizer.describe(image, (mask == 0).astype(np.float32)),
            ReferenceMode.RING: self.harmonizer.describe(image, ring_weights(mask)),
        }

    def run(self, composite: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
        """(default variant's result, score-chosen result, candidates)."""
        alpha = (mask > 0).astype(np.float32)
        variants = standard_variants(self.harmonizer.default_targets, ReferenceMode.ARTWORK, self.harmonizer.strength)
        candidates = self.harmonizer.candidates(composite, composite, alpha, self.references(composite, mask), variants)
        chosen = choose(candidates)
        return self._apply(composite, mask, candidates[0].params), self._apply(composite, mask, chosen.params), candidates

    def score(self, image: np.ndarray, mask: np.ndarray) -> float:
        reference = self.references(image, mask)[ReferenceMode.ARTWORK]
        return self.harmonizer.score(image, (mask > 0).astype(np.float32), reference)

    @staticmethod
    def _apply(composite: np.ndarray, mask: np.ndarray, params) -> np.ndarray:
        if params == IDENTITY:  # as the product does: untouched is the composite itself, not a round trip through Lab
            return composite
        out = composite.copy()
        out[mask > 0] = np.clip(np.rint(apply(composite, params)[mask > 0] * 255), 0, 255).astype(np.uint8)
        return out


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(float(np.mean([row[key] for row in rows])), 3) for key in rows[0]}


def iharmony_cases() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    def read(name: str, long_side: int | None = None) -> np.ndarray:
        image = cv2.cvtColor(cv2.imread(str(IHARMONY / name)), cv2.COLOR_BGR2RGB)
        if long_side and max(image.shape[:2]) > long_side:
            scale = long_side / max(image.shape[:2])
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return image

    if not IHARMONY.exists():
        return []
    cases = [("a0002_1_4", read("a0002.jpg", 512), read("a0002_1_4.jpg", 512), (read("a0002_1.png", 512)[..., 0] > 127).astype(np.uint8))]
    truth, mask = read("c35030.jpg"), (read("c35030_434421.jpg")[..., 0] > 127).astype(np.uint8)
    cases += [(f"c35030_{kind}", truth, read(f"c35030_{kind}.jpg"), mask) for kind in ("gct", "gctrgb", "hgm", "idt")]
    return cases


def inside_mask(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """MSE and PSNR over the masked pixels only."""
    fmse = float(((result[mask > 0].astype(np.float64) - truth[mask > 0]) ** 2).mean())
    return {"fmse": round(fmse, 2), "fpsnr": round(float(10 * np.log10(255.0**2 / max(fmse, 1e-10))), 3)}


def iharmony(runners: dict[str, Runner], product: str) -> dict[str, dict[str, object]]:
    """Per sample: the untouched composite and each method's score-chosen result, inside the mask."""
    figures = {}
    for name, truth, composite, mask in iharmony_cases():
        row: dict[str, object] = {"untouched": inside_mask(composite, truth, mask)}
        for method, runner in runners.items():
            row[method] = inside_mask(runner.run(composite, mask)[1], truth, mask)
        row["no_worse"] = row[product]["fmse"] <= row["untouched"]["fmse"]
        figures[name] = row
    return figures


def faces_in_paintings(settings: Settings, limit: int) -> dict[str, dict[str, object]]:
    """Per painting: faces measured, faces greyed and mean face chroma, for today's harmonizer and ours."""
    harmonizers = {
        "today": load_harmonizer(settings, targets="learned"),
        "ours": load_harmonizer(settings),
    }
    rows: dict[str, dict[str, list]] = {}
    chosen: dict[str, dict[str, list[str]]] = {}
    for case in people_in_paintings.cases(settings, harmonizers, limit=limit):
        row = rows.setdefault(case.painting, {name: [] for name in harmonizers})
        for name in harmonizers:
            row[name] += people_in_paintings.face_chromas(case, name)
            chosen.setdefault(case.painting, {}).setdefault(name, []).append(case.harmonized[name].harmonized.chosen.variant.name)
    figures = {}
    for painting, row in rows.items():
        figures[painting] = {"faces": len(row["ours"]), "painting_chroma": round(row["ours"][0].painting, 1) if row["ours"] else None}
        for name, faces in row.items():
            figures[painting][name] = {
                "greyed": sum(face.greyed for face in faces),
                "plain_chroma": round(float(np.mean([f.plain for f in faces])), 1) if faces else None,
                "chroma": round(float(np.mean([f.after for f in faces])), 1) if faces else None,
                "worst_excess_drop": round(max((f.plain - f.after - f.allowed_drop for f in faces), default=0.0), 1),
                "variants": chosen[painting][name],
            }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=0, help="at most N real photos (0: all)")
    parser.add_argument("--people", type=int, default=0, help="at most N person-painting pairs (0: all)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--all", action="store_true", help="use every record, not only those held out from training")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    records = [r for r in read_index(args.data) if args.all or r.held_out]
    reals = [r for r in records if r.kind == "real"]
    composites = [r for r in records if r.kind == "composite"]
    if args.limit:
        reals, composites = reals[: args.limit], composites[: args.limit]

    settings = Settings.load()
    runners = {name: Runner(load_harmonizer(settings, targets=name)) for name in ("fitted", "learned")}
    results: dict[str, list] = {k: [] for k in ("composite", "reinhard", "fitted", "fitted_chosen", "learned", "learned_chosen")}
    real_scores, synthetic_scores = [], []
    scorer = runners["learned"]
    start = time.perf_counter()
    for record, image, mask, composite, _ in synthetic_composites(reals, args.seed):
        results["composite"].append(metrics(composite, image, mask))
        results["reinhard"].append(metrics(reinhard(composite, mask), image, mask))
        for name, runner in runners.items():
            default, chosen, _ = runner.run(composite, mask)
            results[name].append(metrics(default, image, mask))
            results[f"{name}_chosen"].append(metrics(chosen, image, mask))
        real_scores.append(scorer.score(image, mask))
        synthetic_scores.append(scorer.score(composite, mask))
    dataset_scores = [scorer.score(*record.load()) for record in composites]
    elapsed = time.perf_counter() - start

    summary = {name: mean_metrics(rows) for name, rows in results.items()}
    best = min(("fitted", "learned"), key=lambda name: summary[name]["fmse"])
    figures = {
        "n": len(reals),
        "n_dataset_composites": len(composites),
        "seed": args.seed,
        "composite": summary["composite"],
        "reinhard": summary["reinhard"],
        "ours": summary[best],
        "ours_method": best,
        "ours_chosen": summary[f"{best}_chosen"],
        "fitted": summary["fitted"],
        "learned": summary["learned"],
        "auc_synthetic": round(auc(real_scores, synthetic_scores), 4),
        "auc_dataset": round(auc(real_scores, dataset_scores), 4),
        "selection_gain": round(summary[f"{best}_chosen"]["fmse"] / summary[best]["fmse"], 4),
        "seconds": round(elapsed, 1),
    }

    figures["iharmony4"] = iharmony(runners, settings.harmonize_targets)
    figures["faces_in_paintings"] = faces_in_paintings(settings, args.people)

    print(f"{len(reals)} real photos ({'all' if args.all else 'held out'}), seed {args.seed}, {elapsed:.0f} s")
    print(f"{'method':<22}{'MSE':>9}{'fMSE':>9}{'PSNR':>8}{'dE2000':>8}{'fMSE/comp':>11}")
    for name in ("composite", "reinhard", "fitted", "fitted_chosen", "learned", "learned_chosen"):
        row = summary[name]
        ratio = row["fmse"] / summary["composite"]["fmse"]
        print(f"{name:<22}{row['mse']:>9.1f}{row['fmse']:>9.1f}{row['psnr']:>8.2f}{row['de2000']:>8.2f}{ratio:>11.3f}")
    print(f"ours = {best}: fMSE {summary[best]['fmse'] / summary['composite']['fmse']:.3f} x composite, "
          f"{summary[best]['fmse'] / summary['reinhard']['fmse']:.3f} x Reinhard")
    print(f"score AUC real vs synthetic {figures['auc_synthetic']:.3f}, real vs dataset composites "
          f"{figures['auc_dataset']:.3f} ({len(composites)}), selection gain {figures['selection_gain']:.3f}")
    print(f"iHarmony4, inside the mask (score-chosen results; product default: {settings.harmonize_targets})")
    for name, row in figures["iharmony4"].items():
        cells = "  ".join(f"{m} {row[m]['fmse']:7.1f} / {row[m]['fpsnr']:5.2f} dB" for m in ("untouched", *runners))
        print(f"  {name:<14}{cells}  {'no worse' if row['no_worse'] else 'WORSE'}")
    print("people x paintings: faces greyed (face chroma plain -> after; the painting's chroma)")
    for painting, row in figures["faces_in_paintings"].items():
        cells = "  ".join(
            f"{m}: {row[m]['greyed']}/{row['faces']} greyed, {row[m]['plain_chroma']} -> {row[m]['chroma']}" for m in ("today", "ours")
        )
        print(f"  {painting:<18} painting {row['painting_chroma']}  {cells}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

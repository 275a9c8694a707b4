"""Is the harmony score calibrated on paintings? Plain paste < realistic < painted, in one table.

Composites (from DATA, default ../shared/data):
  (a) painterly/: the shared painterly composites (mask thresholded at 127);
  (b) people x paintings: people/ composed into paintings/ through the real pipeline
      (bench/painterly.py's ``people_cases``: matting, MTCNN, placement; harmonize off).
Each is scored three ways: as the plain paste, after kiosk.harmonize.harmonize_composite's
"realistic" look and after its "painted" look. The score is the product's: the harmonizer that
kiosk.engine.load_harmonizer builds, on the subject's crop reduced as the capture pipeline
reduces it, against the painting outside the subject (the "artwork" reference).

Printed per set and overall: the mean score per look, the share of composites on which each
pair is ordered as it should be (paste < realistic, realistic < painted, paste < painted),
the AUC of paste against painted, and how the words staff see (web/score_words.py) spread over
the looks. The same figures for today's score before issue 11 (the photographic classifier
alone, ``HarmonyScorer.parts``'s first part) come first, for comparison. Composites are slow to make (the painted look, MTCNN twice), so they are written to
--cache once and read back on later runs; --rebuild makes them again.

    .venv/bin/python bench/score_calibration.py [--data DIR] [--limit N] [--cache DIR] [--rebuild] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.painterly import DEFAULT_DATA, Method, painterly_cases, people_cases  # noqa: E402
from bench.harmonization import auc  # noqa: E402
from kiosk.engine import load_harmonizer  # noqa: E402
from kiosk.settings import Settings  # noqa: E402
from pipeline.harmonize.harmonizer import Harmonizer  # noqa: E402
from pipeline.harmonize.score import HarmonyScorer  # noqa: E402
from web.score_words import harmony_in_words  # noqa: E402

LOOKS = ("paste", "realistic", "painted")
ORDERS = (("paste", "realistic"), ("realistic", "painted"), ("paste", "painted"))
DEFAULT_CACHE = Path("/tmp/artbooth-score-calibration")
SCORE_MODEL = ROOT / "pipeline/harmonize/models/harmony_score.npz"
# The scored crop: the subject's box and this share of its size around it, at most this many pixels
# (as pipeline/harmonize/harmonizer.py scores candidates).
CROP_MARGIN = 0.15
CROP_PIXELS = 160_000


@dataclass
class Composite:
    set: str
    name: str
    mask: np.ndarray  # float32 in [0, 1]
    images: dict[str, np.ndarray]  # look -> RGB uint8


def _write(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def make_composites(data: Path, settings: Settings, limit: int | None, cache: Path) -> Iterator[Composite]:
    """Composite every case with each look and write it under ``cache`` (one folder per case)."""
    from kiosk.harmonize import CompositeModels, harmonize_composite

    models = CompositeModels.load(settings)

    def look(name: str) -> Method:
        return Method(name, lambda composite, mask: harmonize_composite(composite, mask, models, look=name).image)

    chosen = [Method("paste", None), look("realistic"), look("painted")]
    sources = [painterly_cases(data / "painterly", chosen, limit), people_cases(data, settings, chosen, limit)]
    for case in (c for source in sources for c in source):
        folder = cache / case.set.replace(" ", "_") / case.name.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        for name, image in case.results.items():
            _write(folder / f"{name}.png", image)
        cv2.imwrite(str(folder / "mask.png"), np.rint(case.mask * 255).astype(np.uint8))
        print(f"made {case.set} / {case.name}", file=sys.stderr)
        yield Composite(case.set, case.name, case.mask, dict(case.results))


def cached_composites(cache: Path) -> list[Composite]:
    found = []
    for folder in sorted(p for p in cache.glob("*/*") if (p / "mask.png").exists()):
        mask = cv2.imread(str(folder / "mask.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        images = {look: _read(folder / f"{look}.png") for look in LOOKS}
        found.append(Composite(folder.parent.name.replace("_", " "), folder.name, mask, images))
    return found


def scored_crop(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The subject's crop and alpha, reduced as the capture pipeline reduces what it scores."""
    ys, xs = np.nonzero(mask > 0)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    mx, my = round((x1 - x0) * CROP_MARGIN), round((y1 - y0) * CROP_MARGIN)
    height, width = mask.shape
    bx0, by0, bx1, by1 = max(x0 - mx, 0), max(y0 - my, 0), min(x1 + mx, width), min(y1 + my, height)
    crop, alpha = image[by0:by1, bx0:bx1], mask[by0:by1, bx0:bx1]
    scale = min(1.0, (CROP_PIXELS / alpha.size) ** 0.5)
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop), alpha


def score_composite(harmonizer: Harmonizer, image: np.ndarray, mask: np.ndarray) -> float:
    """The product's score of the subject ``mask`` marks in ``image``, against the paint outside it."""
    reference = harmonizer.describe(image, (mask <= 0).astype(np.float32))
    return harmonizer.score(*scored_crop(image, mask), reference)


def photographic_score(scorer: HarmonyScorer, image: np.ndarray, mask: np.ndarray) -> float:
    """Today's score before issue 11: the photographic classifier alone, on the same crop."""
    reference = scorer.describe_reference(image, (mask <= 0).astype(np.float32))
    return scorer.parts(*scored_crop(image, mask), reference)[0]


def summarise(rows: list[dict[str, object]], key: str = "scores") -> dict[str, dict[str, object]]:
    sets = {"all": rows} | {s: [r for r in rows if r["set"] == s] for s in dict.fromkeys(r["set"] for r in rows)}
    summary = {}
    for name, subset in sets.items():
        scores = {look: np.array([r[key][look] for r in subset]) for look in LOOKS}
        figures: dict[str, object] = {"composites": len(subset)}
        figures["mean"] = {look: round(float(values.mean()), 3) for look, values in scores.items()}
        figures["ordered"] = {
            f"{lo} < {hi}": round(float((scores[lo] < scores[hi]).mean()), 3) for lo, hi in ORDERS
        }
        figures["auc_paste_vs_painted"] = round(auc(list(scores["painted"]), list(scores["paste"])), 3)
        figures["auc_paste_vs_realistic"] = round(auc(list(scores["realistic"]), list(scores["paste"])), 3)
        figures["words"] = {
            look: {w: int(sum(harmony_in_words(s) == w for s in values)) for w in dict.fromkeys(harmony_in_words(s) for s in values)}
            for look, values in scores.items()
        }
        summary[name] = figures
    return summary


def print_table(summary: dict[str, dict[str, object]]) -> None:
    for name, figures in summary.items():
        print(f"\n{name}: {figures['composites']} composites")
        print(f"  {'mean score':<26}" + "".join(f"{look:>12}" for look in LOOKS))
        print(f"  {'':<26}" + "".join(f"{figures['mean'][look]:>12.3f}" for look in LOOKS))
        for pair, share in figures["ordered"].items():
            print(f"  ordered {pair:<24}{share:>8.0%}")
        print(f"  AUC paste vs painted     {figures['auc_paste_vs_painted']:.3f}")
        print(f"  AUC paste vs realistic   {figures['auc_paste_vs_realistic']:.3f}")
        for look in LOOKS:
            spread = ", ".join(f"{words} {count}" for words, count in figures["words"][look].items())
            print(f"  words, {look:<10} {spread}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with painterly/, people/ and paintings/")
    parser.add_argument("--limit", type=int, help="at most N composites of each set")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the composites are kept between runs")
    parser.add_argument("--rebuild", action="store_true", help="make the composites again")
    parser.add_argument("--make-only", action="store_true", help="make the composites, score nothing")
    parser.add_argument("--json", type=Path, help="write the summary and every composite's scores here")
    args = parser.parse_args()

    settings = Settings.load()
    composites = [] if args.rebuild else cached_composites(args.cache)
    if not composites:
        composites = list(make_composites(args.data, settings, args.limit, args.cache))
    if args.make_only:
        return
    if not composites:
        parser.error(f"no composites found under {args.data}")
    harmonizer = load_harmonizer(settings)
    with np.load(SCORE_MODEL) as weights:
        scorer = HarmonyScorer(weights)
    rows = []
    seconds = 0.0
    for composite in composites[: args.limit and 2 * args.limit]:
        start = time.perf_counter()
        scores = {look: round(score_composite(harmonizer, composite.images[look], composite.mask), 4) for look in LOOKS}
        seconds += time.perf_counter() - start
        today = {look: round(photographic_score(scorer, composite.images[look], composite.mask), 4) for look in LOOKS}
        rows.append({"set": composite.set, "name": composite.name, "scores": scores, "today": today})
        print(f"{composite.set} / {composite.name}: " + "  ".join(f"{k} {v:.3f}" for k, v in scores.items()), file=sys.stderr)
    print(f"{len(rows)} composites, {1000 * seconds / max(3 * len(rows), 1):.0f} ms per score (describing the reference included)")
    before, after = summarise(rows, "today"), summarise(rows)
    print("\n=== today's score (photographic classifier alone) ===")
    print_table(before)
    print("\n=== the painting-aware score ===")
    print_table(after)
    if args.json:
        args.json.write_text(json.dumps({"today": before, "summary": after, "composites": rows}, indent=2))


if __name__ == "__main__":
    main()

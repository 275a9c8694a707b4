"""A contact sheet to look at harmonization as a visitor would.

Top: benchmark rows of composite | harmonized | ground truth (held-out Lalonde photos).
Bottom: people from ../shared/data/people placed into ../shared/data/paintings through the real
pipeline (bench/people_in_paintings.py): plain paste | today (learned targets: the harmonizer's
default before issue 11, unguarded) | realistic (the settings' harmonizer) | painted (the painted
look of `artbooth harmonize`, kiosk.harmonize, run on the plain paste), side by side.

    .venv/bin/python bench/contact_sheet.py [-o contact_sheet.png] [--rows N] [--people N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import people_in_paintings  # noqa: E402
from bench.harmonization import Runner  # noqa: E402
from bench.painterly import placed_mask  # noqa: E402
from bench.harmony_data import DEFAULT_DATA, read_index, synthetic_composites  # noqa: E402
from kiosk.engine import load_harmonizer  # noqa: E402
from kiosk.harmonize import CompositeModels, harmonize_composite  # noqa: E402
from kiosk.settings import Settings  # noqa: E402

CELL_HEIGHT = 256


def fit_height(image: np.ndarray, height: int = CELL_HEIGHT) -> np.ndarray:
    return cv2.resize(image, (round(image.shape[1] * height / image.shape[0]), height), interpolation=cv2.INTER_AREA)


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def hstack(cells: list[np.ndarray], gap: int = 6) -> np.ndarray:
    spacer = np.full((cells[0].shape[0], gap, 3), 255, np.uint8)
    parts = []
    for cell in cells:
        parts += [cell, spacer]
    return np.concatenate(parts[:-1], axis=1)


def vstack(rows: list[np.ndarray], gap: int = 6) -> np.ndarray:
    width = max(row.shape[1] for row in rows)
    padded = [np.pad(row, ((0, gap), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    return np.concatenate(padded, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=Path("contact_sheet.png"))
    parser.add_argument("--rows", type=int, default=6)
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    settings = Settings.load()

    rows = []
    runner = Runner(load_harmonizer(settings))
    reals = [r for r in read_index(DEFAULT_DATA) if r.kind == "real" and r.held_out][: args.rows]
    for record, image, mask, composite, _ in synthetic_composites(reals, args.seed):
        harmonized = runner.run(composite, mask)[0]
        rows.append(hstack([label(fit_height(x), t) for x, t in ((composite, "composite"), (harmonized, "harmonized"), (image, "ground truth"))]))

    harmonizers = {"today": load_harmonizer(settings, targets="learned"), "realistic": load_harmonizer(settings)}
    looks = CompositeModels.load(settings)
    for case in people_in_paintings.cases(settings, harmonizers, limit=args.people):
        cells = [label(fit_height(case.plain.image, 360), f"{case.painting}: pasted")]
        for name, composition in case.harmonized.items():
            chosen = composition.harmonized.chosen
            cells.append(label(fit_height(composition.image, 360), f"{name} ({chosen.variant.name}, score {chosen.score:.2f})"))
        mask = placed_mask(case.plain, case.artwork.image.shape[:2])
        painted = harmonize_composite(case.plain.image, mask, looks, look="painted")
        cells.append(label(fit_height(painted.image, 360), "painted"))
        rows.append(hstack(cells))

    sheet = vstack(rows)
    cv2.imwrite(str(args.output), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.output} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()

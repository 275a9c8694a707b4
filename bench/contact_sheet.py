"""A contact sheet to look at harmonization as a visitor would.

Top: benchmark rows of composite | harmonized | ground truth (held-out Lalonde photos).
Bottom: people from ../shared/data/people placed into ../shared/data/paintings, without
and with harmonization, side by side.

    .venv/bin/python bench/contact_sheet.py [-o contact_sheet.png] [--rows N] [--people N]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harmonization import Runner  # noqa: E402
from bench.harmony_data import DEFAULT_DATA, read_index, synthetic_composites  # noqa: E402
from kiosk.engine import build_compositor, load_harmonizer  # noqa: E402
from kiosk.settings import Settings  # noqa: E402
from pipeline.codec import decode_image  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.types import Artwork, ArtworkSpec, Framing, NormBox  # noqa: E402

SHARED = ROOT.parent / "shared/data"
CELL_HEIGHT = 256
PAINTING_BOXES = {
    Framing.FULL_BODY: NormBox(0.38, 0.25, 0.62, 0.95),
    Framing.HALF_BODY: NormBox(0.28, 0.3, 0.72, 1.0),
    Framing.CLOSE_UP: NormBox(0.3, 0.25, 0.7, 1.0),
}


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

    plain = build_compositor(dataclasses.replace(settings, harmonize=False))
    harmonizing = build_compositor(settings)
    with (SHARED / "paintings/index.csv").open() as fh:
        paintings = list(csv.DictReader(fh))
    with (SHARED / "people/index.csv").open() as fh:
        people = [row["file"] for row in csv.DictReader(fh)][: args.people]
    for index, person in enumerate(people):
        painting = paintings[index % len(paintings)]
        art_image = decode_image((SHARED / "paintings" / painting["file"]).read_bytes(), max_pixels=50_000_000)
        art_image = fit_height(art_image, 720)
        spec = ArtworkSpec(painting["file"], painting["title"], painting["artist"], painting["year"], PAINTING_BOXES)
        artwork = Artwork(spec, art_image)
        photo = decode_image((SHARED / "people" / person).read_bytes(), max_pixels=50_000_000)
        try:
            before = plain(photo, artwork).image
            after = harmonizing(photo, artwork)
        except PipelineError as exc:
            print(f"{person}: {exc}")
            continue
        score = after.harmonized.chosen.score
        rows.append(hstack([label(fit_height(before, 360), f"{painting['title']}: pasted"), label(fit_height(after.image, 360), f"harmonized ({after.harmonized.chosen.variant.name}, score {score:.2f})")]))

    sheet = vstack(rows)
    cv2.imwrite(str(args.output), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.output} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()

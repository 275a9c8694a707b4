"""Harmonization data in the layout of ../shared/data/harmonization/lalonde, shared by the
benchmark and the training scripts so that all three read, split and perturb it the same way.

Split: a record whose numeric id is divisible by TEST_MODULUS is held out for evaluation;
training scripts use only the others. (The shared folder is itself the DEV split of the
source data; a hidden split exists elsewhere, on which every record is unseen.)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.harmonize.synthetic import perturb_region

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/harmonization/lalonde"
TEST_MODULUS = 4


@dataclass(frozen=True)
class Record:
    id: str
    kind: str  # "real" or "composite"
    image_path: Path
    mask_path: Path

    @property
    def held_out(self) -> bool:
        return int(self.id) % TEST_MODULUS == 0

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 image and a 0/1 uint8 mask of the same size."""
        image = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(self.mask_path), cv2.IMREAD_GRAYSCALE)
        if image is None or mask is None:
            raise OSError(f"cannot read record {self.id}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (mask > 127).astype(np.uint8)


def read_index(root: Path) -> list[Record]:
    with (root / "index.csv").open(newline="") as fh:
        return [
            Record(row["id"], row["kind"], root / row["image"], root / row["mask"])
            for row in csv.DictReader(fh)
        ]


def synthetic_composites(
    records: list[Record], seed: int, colour_sources: list[Record] | None = None
):
    """Yield (record, real image, mask, synthetic composite, gains) for each real record.

    The colour source of each composite is another real photo drawn with the seeded generator
    from ``colour_sources`` (default: the same records).
    """
    rng = np.random.default_rng(seed)
    sources = colour_sources or records
    for record in records:
        image, mask = record.load()
        source = sources[int(rng.integers(len(sources)))]
        if source.id == record.id:
            source = sources[(sources.index(source) + 1) % len(sources)]
        colour_source, _ = source.load()
        composite, gains = perturb_region(image, mask, colour_source, rng)
        yield record, image, mask, composite, gains

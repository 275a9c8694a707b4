"""The harmony score, and the variant kept, in words staff understand.

The harmonizer's score (``pipeline.harmonize.score``) is a number in [0, 1]; staff see this phrase
instead. The thresholds are calibrated on people composed into paintings and on the painterly
composites (``bench/score_calibration.py``: its table shows how the looks spread over the phrases).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# (lowest score, words), best first. A score below every threshold gets the last phrase.
# Calibrated with bench/score_calibration.py on people composed into paintings and the painterly
# composites (36): 4 in 5 plain pastes score below 0.15 and 1 in 36 reaches 0.55; 3 in 5 of the
# painted look reach 0.3 ("Blends in") and more than a quarter 0.55; a photo's own object
# (Lalonde, held out) scores about 0.8 on average, its colour-perturbed copy about 0.1.
_BANDS: tuple[tuple[float, str], ...] = (
    (0.55, "Blends in very well"),
    (0.30, "Blends in"),
    (0.15, "Noticeably pasted-in"),
)
_LOWEST = "Looks pasted on"


def harmony_in_words(score: float | None) -> str:
    """A short phrase for a harmony score in [0, 1] (None or NaN: "Not scored")."""
    if score is None or math.isnan(score):
        return "Not scored"
    for threshold, words in _BANDS:
        if score >= threshold:
            return words
    return _LOWEST


# The harmonizer's variant names (pipeline/harmonize/harmonizer.py standard_variants) in words.
_VARIANTS = {
    "default": "Full colour-and-light match to the artwork",
    "gentle": "Gentle colour-and-light match to the artwork",
    "untouched": "Colours left as photographed",
}
_REFERENCES = {
    "ring": "the paint around the visitor",
    "artwork": "the whole artwork",
    "region": "the artwork's chosen reference region",
}


def variant_in_words(variant: Mapping[str, Any] | None) -> str:
    """What was done to the visitor, from a photo's stored variant (its ``name`` counts)."""
    if not variant:
        return "Not harmonized: the visitor as photographed"
    painted = variant.get("painted")
    if isinstance(painted, Mapping):
        colour = variant_in_words({key: value for key, value in variant.items() if key != "painted"})
        return f"{variant_in_words(painted)}, after: {colour[0].lower()}{colour[1:]}"
    name = str(variant.get("name", ""))
    if name in _VARIANTS:
        return _VARIANTS[name]
    if name.startswith("matched-"):
        return f"Half-strength colour match to {_REFERENCES.get(name.removeprefix('matched-'), name.removeprefix('matched-'))}"
    if name == "painted":
        return "Painted into the artwork"
    if name.startswith("painted-"):
        try:
            share = float(name.removeprefix("painted-"))
        except ValueError:
            return "Painted into the artwork"
        return f"Painted into the artwork, lightly ({share:.0%} of the full repaint)"
    return name or "Unnamed variant"

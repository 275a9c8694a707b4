"""The harmony score, and the variant kept, in words staff understand.

The harmonizer's score (``pipeline.harmonize.score``) is a number in [0, 1]; staff see this phrase
instead. The thresholds are calibrated on people composed into paintings and on the painterly
composites (``bench/score_calibration.py``: its table shows how the looks spread over the phrases).
The phrases are in web/staff_text.py (the staff catalogue); each function takes the page's
``gettext`` and answers in English without one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from web.staff_text import HARMONY_WORDS, VARIANT_WORDS

Gettext = Callable[[str], str]


def _english(message: str) -> str:
    return message


# (lowest score, words), best first. A score below every threshold gets the last phrase.
# Calibrated with bench/score_calibration.py on people composed into paintings and the painterly
# composites (36): 4 in 5 plain pastes score below 0.15 and 1 in 36 reaches 0.55; 3 in 5 of the
# painted look reach 0.3 ("Blends in") and more than a quarter 0.55; a photo's own object
# (Lalonde, held out) scores about 0.8 on average, its colour-perturbed copy about 0.1.
_BANDS: tuple[tuple[float, str], ...] = (
    (0.55, HARMONY_WORDS["very-well"]),
    (0.30, HARMONY_WORDS["well"]),
    (0.15, HARMONY_WORDS["noticeable"]),
)
_LOWEST = HARMONY_WORDS["pasted"]


def harmony_in_words(score: float | None, gettext: Gettext = _english) -> str:
    """A short phrase for a harmony score in [0, 1] (None or NaN: "Not scored")."""
    if score is None or math.isnan(score):
        return gettext(HARMONY_WORDS["none"])
    for threshold, words in _BANDS:
        if score >= threshold:
            return gettext(words)
    return gettext(_LOWEST)


def variant_in_words(variant: Mapping[str, Any] | None, gettext: Gettext = _english) -> str:
    """What was done to the visitor, from a photo's stored variant (its ``name`` counts), as the
    harmonizer names them (pipeline/harmonize/harmonizer.py standard_variants)."""
    if not variant:
        return gettext(VARIANT_WORDS["none"])
    painted = variant.get("painted")
    if isinstance(painted, Mapping):
        colour = variant_in_words({key: value for key, value in variant.items() if key != "painted"}, gettext)
        painting = variant_in_words(painted, gettext)
        return gettext(VARIANT_WORDS["painted-after"]) % {"painting": painting, "colour": colour[0].lower() + colour[1:]}
    name = str(variant.get("name", ""))
    if name in VARIANT_WORDS and name not in ("none", "unnamed", "painted-lightly", "painted-after"):
        return gettext(VARIANT_WORDS[name])
    if name.startswith("painted-"):
        try:
            share = float(name.removeprefix("painted-"))
        except ValueError:
            return gettext(VARIANT_WORDS["painted"])
        return gettext(VARIANT_WORDS["painted-lightly"]) % {"share": f"{share:.0%}"}
    return name or gettext(VARIANT_WORDS["unnamed"])

"""A small learned predictor of a composite object's true appearance statistics.

Given the Lab statistics of the foreground as it stands in a composite and those of the
background (the rest of the photo), predict the statistics the foreground should have
(a RegionStats). Pure numpy inference of a tiny ensemble of MLPs trained by
bench/train_harmonizer.py; the weights (and every normalisation constant) come in as arrays,
as saved in pipeline/harmonize/models/target_stats.npz.

Features, per region (foreground and background alike): l_p10, l_mean, l_p90, log l_std,
a_mean, b_mean, log a_std, log b_std, and the two L shape ratios (mean - p10) / std and
(p90 - mean) / std. The shape ratios of the foreground are what carry most of the signal:
a synthetic composite gets another photo's means and spreads, but the shape of the object's
L distribution survives, and it says a good deal about where the object's L mean really is.

Outputs: the target itself (not a correction of the foreground, whose means and spreads in a
composite are another photo's), encoded as l_mean, a_mean, b_mean, log l_std, log a_std,
log b_std, log (l_mean - l_p10), log (l_p90 - l_mean). Outputs flagged in ``y_ref`` (in the
shipped model: a_mean, b_mean, log a_std, log b_std) are predicted relative to the
background's own value, so that the colour cast of the scene carries over even for scenes
unlike the training photos; the L outputs are absolute (in the training data an object's L
mean is uncorrelated with its background's). The gaps are exponentiated, so
p10 <= mean <= p90 and the standard deviations are positive by construction; the result is
then clamped to the Lab range.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pipeline.harmonize.stats import RegionStats

FORMAT_VERSION = 1
N_REGION_FEATURES = 10
N_FEATURES = 2 * N_REGION_FEATURES
N_OUTPUTS = 8

# Floors and ceilings that keep features finite and outputs plausible.
MIN_STD = 1e-3
MIN_GAP = 1e-2
FEATURE_CLIP = 5.0  # standardised inputs are clipped to +- this many training standard deviations
LOG_STD_RANGE = (np.log(0.05), np.log(80.0))
LOG_GAP_RANGE = (np.log(MIN_GAP), np.log(100.0))
AB_RANGE = (-128.0, 127.0)

_SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (torch.nn.GELU(approximate="tanh"))."""
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def region_features(stats: np.ndarray) -> np.ndarray:
    """(n, 8) RegionStats arrays -> (n, 10) features (see the module docstring)."""
    stats = np.asarray(stats, dtype=np.float64)
    p10, mean, p90 = stats[:, 0], stats[:, 1], stats[:, 2]
    l_std = np.maximum(stats[:, 3], MIN_STD)
    a_std = np.maximum(stats[:, 6], MIN_STD)
    b_std = np.maximum(stats[:, 7], MIN_STD)
    return np.stack(
        [
            p10,
            mean,
            p90,
            np.log(l_std),
            stats[:, 4],
            stats[:, 5],
            np.log(a_std),
            np.log(b_std),
            (mean - p10) / l_std,
            (p90 - mean) / l_std,
        ],
        axis=1,
    )


def features(foreground: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(n, 8) foreground and background stats -> (n, 20) model inputs (not yet standardised)."""
    return np.concatenate([region_features(foreground), region_features(reference)], axis=1)


def encode_targets(stats: np.ndarray) -> np.ndarray:
    """(n, 8) RegionStats arrays -> (n, 8) raw outputs (inverse of decode_targets)."""
    stats = np.asarray(stats, dtype=np.float64)
    mean = stats[:, 1]
    return np.stack(
        [
            mean,
            stats[:, 4],
            stats[:, 5],
            np.log(np.maximum(stats[:, 3], MIN_STD)),
            np.log(np.maximum(stats[:, 6], MIN_STD)),
            np.log(np.maximum(stats[:, 7], MIN_STD)),
            np.log(np.maximum(mean - stats[:, 0], MIN_GAP)),
            np.log(np.maximum(stats[:, 2] - mean, MIN_GAP)),
        ],
        axis=1,
    )


def decode_targets(raw: np.ndarray) -> np.ndarray:
    """(n, 8) raw outputs -> (n, 8) well-formed RegionStats arrays."""
    raw = np.asarray(raw, dtype=np.float64)
    mean = np.clip(raw[:, 0], 0.0, 100.0)
    low_gap = np.exp(np.clip(raw[:, 6], *LOG_GAP_RANGE))
    high_gap = np.exp(np.clip(raw[:, 7], *LOG_GAP_RANGE))
    stds = np.exp(np.clip(raw[:, 3:6], *LOG_STD_RANGE))
    return np.stack(
        [
            np.maximum(mean - low_gap, 0.0),
            mean,
            np.minimum(mean + high_gap, 100.0),
            stds[:, 0],
            np.clip(raw[:, 1], *AB_RANGE),
            np.clip(raw[:, 2], *AB_RANGE),
            stds[:, 1],
            stds[:, 2],
        ],
        axis=1,
    )


class LearnedTargets:
    """Predicts a composite foreground's true RegionStats from its own and its background's.

    ``weights`` holds, as saved by bench/train_harmonizer.py: ``x_mean``, ``x_std`` (20,)
    input standardisation; ``y_mean``, ``y_std`` (8,) output de-standardisation; ``y_ref`` (8,)
    0/1 flags of the outputs predicted relative to the background's encoded stats; and for an
    ensemble of M MLPs with layers 0..D, ``w{i}`` (M, fan_in, fan_out) and ``b{i}``
    (M, fan_out). Hidden layers use GELU (tanh form); the members' raw outputs are averaged.
    """

    def __init__(self, weights: Mapping[str, np.ndarray]) -> None:
        def get(name: str) -> np.ndarray:
            if name not in weights:
                raise ValueError(f"learned-targets weights lack {name!r}")
            array = np.array(weights[name], dtype=np.float64)  # a private copy
            if not np.all(np.isfinite(array)):
                raise ValueError(f"learned-targets weights {name!r} are not finite")
            array.setflags(write=False)
            return array

        version = int(np.asarray(weights["version"])) if "version" in weights else FORMAT_VERSION
        if version != FORMAT_VERSION:
            raise ValueError(f"learned-targets weights are format {version}, expected {FORMAT_VERSION}")
        self._x_mean, self._x_std = get("x_mean"), get("x_std")
        self._y_mean, self._y_std = get("y_mean"), get("y_std")
        self._y_ref = get("y_ref")
        if self._y_ref.shape != (N_OUTPUTS,) or not np.all((self._y_ref == 0) | (self._y_ref == 1)):
            raise ValueError("learned-targets y_ref must be 8 flags of 0 or 1")
        if self._x_mean.shape != (N_FEATURES,) or self._x_std.shape != (N_FEATURES,):
            raise ValueError("learned-targets input normalisation has the wrong shape")
        if self._y_mean.shape != (N_OUTPUTS,) or self._y_std.shape != (N_OUTPUTS,):
            raise ValueError("learned-targets output normalisation has the wrong shape")
        if np.any(self._x_std <= 0):
            raise ValueError("learned-targets input scales must be positive")

        layers = []
        while f"w{len(layers)}" in weights:
            index = len(layers)
            layers.append((get(f"w{index}"), get(f"b{index}")))
        if not layers:
            raise ValueError("learned-targets weights hold no layers")
        fan_in = N_FEATURES
        members = layers[0][0].shape[0]
        for w, b in layers:
            if w.ndim != 3 or w.shape[0] != members or w.shape[1] != fan_in or b.shape != (members, w.shape[2]):
                raise ValueError("learned-targets layer shapes do not chain")
            fan_in = w.shape[2]
        if fan_in != N_OUTPUTS:
            raise ValueError("learned-targets last layer must have 8 outputs")
        self._layers = tuple(layers)

    @property
    def members(self) -> int:
        return self._layers[0][0].shape[0]

    def predict_arrays(self, foreground: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Batch form: (n, 8) foreground and background stats arrays -> (n, 8) predicted stats."""
        foreground = np.atleast_2d(np.asarray(foreground, dtype=np.float64))
        reference = np.atleast_2d(np.asarray(reference, dtype=np.float64))
        if foreground.shape != reference.shape or foreground.shape[1:] != (8,):
            raise ValueError("expected matching (n, 8) statistics arrays")
        if not (np.all(np.isfinite(foreground)) and np.all(np.isfinite(reference))):
            raise ValueError("statistics must be finite")
        x = (features(foreground, reference) - self._x_mean) / self._x_std
        h = np.clip(x, -FEATURE_CLIP, FEATURE_CLIP)[None]  # (1, n, features), broadcast over members
        last = len(self._layers) - 1
        for index, (w, b) in enumerate(self._layers):
            h = h @ w + b[:, None, :]
            if index < last:
                h = gelu(h)
        raw = h.mean(axis=0) * self._y_std + self._y_mean + self._y_ref * encode_targets(reference)
        return decode_targets(raw)

    def __call__(self, foreground: RegionStats, reference: RegionStats) -> RegionStats:
        predicted = self.predict_arrays(foreground.as_array()[None], reference.as_array()[None])
        return RegionStats.from_array(predicted[0])

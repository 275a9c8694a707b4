"""Harmony score: how much a placed foreground looks like it belongs to its surroundings.

The score in [0, 1] (1 = harmonious) joins two parts (``HarmonyScorer.parts``) as independent
judges, 1 - (1 - photographic) (1 - painterly):

* photographic: the probability, from a small classifier trained on real photos against
  composites (``bench/train_harmony_score.py``), that the foreground and its reference region
  come from one photo; on a painting it reads low for every photographed subject, painted in or not;
* painterly: the probability that the foreground is painted like the paint around it (texture
  and palette, ``pipeline/harmonize/style_score.py``, fitted by ``bench/train_style_score.py``),
  counted as far as the surroundings look like paint; around photos it is held down.

bench/score_calibration.py measures both on people in paintings (plain paste < realistic <
painted); bench/harmonization.py on photos. The rest of this docstring is the photographic part.

Every photographic feature is a relation between the
foreground and the reference or its surroundings, and none is one of the statistics that a
harmonizer's fitter drives to its target (luminance p10/mean/p90, Lab chroma mean/spread, Lab
means are deliberately left out):

* illuminant estimates in linear RGB (gray-world, bright-pixel, gray-edge, shades-of-gray):
  distances between the foreground's and the reference's log-chromaticities;
* continuity across the object boundary: local colour jumps between a band just inside the
  alpha and a band just outside it (both BAND_GAP pixels off the contour, so that neither a
  rough mask nor a soft matte's transition decides them), compared with the jumps one band
  deeper on either side, and their sign consistency along the contour;
* luminance-zone relations (tails, clipping, skew, kurtosis, histogram overlap), chroma tail,
  a/b histogram overlap and hue;
* sharpness and grain: fine and mid-frequency detail, and a noise floor, of the foreground
  against its surroundings in the crop.

Everything is computed on a working copy of at most WORK_PIXELS pixels (a 256x256 image, the
training data's size, is used as is; a 1000x1000 crop is block-averaged by 4), so one call on
such a crop takes about 15-25 ms on one core. Cues that cannot be measured (no contour inside
the crop, no surroundings) come out as NaN and the model takes its training mean for them.
The module is pure: no file I/O, no mutable module state. The model's arrays come in through
``HarmonyScorer(weights)`` (e.g. ``np.load(path)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import cv2
import numpy as np

from pipeline.harmonize.style_score import (
    FITTED_STYLE_MODEL,
    PaletteFeatures,
    StyleModel,
    paint_likeness,
    palette_features,
    style_features,
)

# Working size: the training photos are 256x256; crops are brought to at most this many pixels.
WORK_PIXELS = 256 * 256
GAMMA = 2.2
EPS = 1e-4
# Boundary band width and local window, in working-resolution pixels.
BAND = 3
BAND_GAP = 2
LOCAL_WINDOW = 15
# Surround for the texture comparison: background pixels within this distance of the alpha.
SURROUND = 24
# Minimum weight (pixels) for a region statistic to count; below it the feature is NaN.
MIN_WEIGHT = 24.0

_LINEAR_LUT = ((np.arange(256, dtype=np.float64) / 255.0) ** GAMMA).astype(np.float32)
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)

FEATURE_NAMES: tuple[str, ...] = (
    # Illuminant estimates: distance between the foreground's and the reference's
    # log-chromaticity (log R/G, log B/G in linear RGB), and how much the four disagree.
    "gw_dist", "bp_dist", "ge_dist", "sog_dist", "illum_spread",
    # Luminance zones and histogram shape, foreground against reference (tails, not the
    # p10/mean/p90 that a fitter matches).
    "d_l_p02", "d_l_p98", "log_l_std_ratio", "d_l_skew", "d_l_kurt",
    "d_clip_hi", "d_clip_lo", "l_hist_overlap",
    # Chroma shape and hue.
    "ab_hist_overlap", "log_chroma_p90_ratio", "d_hue_cos",
    # Boundary continuity: band just inside vs band just outside the contour.
    "bnd_dl", "bnd_da", "bnd_db", "bnd_de", "bnd_chroma_jump",
    "bnd_de_vs_intra", "bnd_chroma_vs_intra",
    "bnd_sign_a", "bnd_sign_b", "bnd_sign_l", "bnd_band_dist",
    # Sharpness and grain, foreground against its surroundings in the crop.
    "tex_fine", "tex_mid", "tex_fine_mid", "tex_noise", "tex_chroma_noise",
)

# Indices into the per-region summary vector (see _region_summary).
_S_GW, _S_BP, _S_GE, _S_SOG = slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)
_S_LP = slice(8, 10)  # L percentiles 2 and 98
_I_LSTD, _I_SKEW, _I_KURT, _I_CLIP_HI, _I_CLIP_LO, _I_CP90 = range(10, 16)
_S_HUE = slice(16, 18)  # unit vector of the mean (a, b)
_SUMMARY_LEN = 18
_L_BINS = 20
_AB_BINS = 8
_AB_RANGE = 60.0


@dataclass(frozen=True)
class ReferenceFeatures:
    """What the score needs of the reference region: computed once per artwork/reference."""

    summary: np.ndarray  # float64, the region summary (illuminant, Lab zones, chroma)
    l_hist: np.ndarray  # normalized L histogram
    ab_hist: np.ndarray  # normalized a/b histogram (flattened)
    palette: PaletteFeatures  # for the style match (pipeline/harmonize/style_score.py)


@dataclass(frozen=True)
class _Working:
    lab: np.ndarray  # float32 (h, w, 3)
    lin: np.ndarray  # float32 (h, w, 3), linear RGB
    weights: np.ndarray  # float32 (h, w)


def _to_working(image: np.ndarray, weights: np.ndarray) -> _Working:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("image must be RGB uint8 (H, W, 3)")
    if weights.shape != image.shape[:2]:
        raise ValueError("weights must match the image's height and width")
    height, width = weights.shape
    weights = weights.astype(np.float32, copy=False)
    if height * width > WORK_PIXELS:
        # An integer factor: INTER_AREA is then a plain block average (and several times faster).
        factor = int(np.ceil((height * width / WORK_PIXELS) ** 0.5))
        size = (max(1, width // factor), max(1, height // factor))
        image = cv2.resize(image[: size[1] * factor, : size[0] * factor], size, interpolation=cv2.INTER_AREA)
        weights = cv2.resize(weights[: size[1] * factor, : size[0] * factor], size, interpolation=cv2.INTER_AREA)
    weights = np.clip(weights, 0.0, 1.0)
    lin = cv2.LUT(image, _LINEAR_LUT)
    lab = cv2.cvtColor(np.multiply(image, np.float32(1.0 / 255.0), dtype=np.float32), cv2.COLOR_RGB2LAB)
    return _Working(lab=lab, lin=lin, weights=weights)


def _wmean(values: np.ndarray, weights: np.ndarray, total: float) -> np.ndarray:
    """Weighted mean over pixels; values (h, w) or (h, w, c)."""
    if values.ndim == 2:
        return np.float64(np.dot(values.ravel(), weights.ravel()) / total)
    flat = values.reshape(-1, values.shape[-1])
    return (weights.ravel() @ flat).astype(np.float64) / total


def _bin_index(values: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    index = ((values.ravel() - np.float32(lo)) * np.float32(bins / (hi - lo))).astype(np.int32)
    np.maximum(index, 0, out=index)
    return np.minimum(index, bins - 1, out=index)


def _weighted_hist(values: np.ndarray, weights: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    return np.bincount(_bin_index(values, lo, hi, bins), weights=weights.ravel(), minlength=bins)


def _quantiles_of_hist(hist: np.ndarray, qs: tuple[float, ...], lo: float, hi: float) -> np.ndarray:
    bins = len(hist)
    cumulative = np.cumsum(hist)
    cumulative /= max(cumulative[-1], EPS)
    positions = np.minimum(np.searchsorted(cumulative, np.asarray(qs)), bins - 1)
    return lo + (positions + 0.5) * ((hi - lo) / bins)


def _hist_quantiles(
    values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...], lo: float, hi: float, bins: int
) -> np.ndarray:
    return _quantiles_of_hist(_weighted_hist(values, weights, lo, hi, bins), qs, lo, hi)


def _log_chroma(rgb: np.ndarray) -> np.ndarray:
    rgb = np.maximum(rgb, 1e-5)
    return np.array([np.log(rgb[0] / rgb[1]), np.log(rgb[2] / rgb[1])])


def _gray_edge_map(lin: np.ndarray) -> np.ndarray:
    smooth = cv2.GaussianBlur(lin, (0, 0), 1.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def _region_summary(
    work: _Working, weights: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summary vector, L histogram and ab histogram of the region ``weights`` (which is not empty)."""
    total = float(weights.sum())
    lab, lin = work.lab, work.lin
    summary = np.zeros(_SUMMARY_LEN)
    summary[_S_GW] = _log_chroma(_wmean(lin, weights, total))
    luminance = lin @ _LUMA
    (bright,) = _hist_quantiles(luminance, weights, (0.95,), 0.0, 1.0, 512)
    bright_weights = weights * (luminance >= bright)
    if bright_weights.sum() < 1.0:
        bright_weights = weights
    summary[_S_BP] = _log_chroma(_wmean(lin, bright_weights, float(bright_weights.sum())))
    summary[_S_GE] = _log_chroma(_wmean(edges, weights, total) + 1e-5)
    cubed = lin * lin * lin
    sixth = _wmean(cubed * cubed, weights, total) ** (1.0 / 6.0)
    summary[_S_SOG] = _log_chroma(sixth)
    mean = _wmean(lab, weights, total)
    lightness = lab[..., 0]
    l_fine = _weighted_hist(lightness, weights, 0.0, 100.0, 400)
    summary[_S_LP] = _quantiles_of_hist(l_fine, (0.02, 0.98), 0.0, 100.0)
    centred = lightness - np.float32(mean[0])
    squared = centred * centred
    std = max(float(_wmean(squared, weights, total)), EPS) ** 0.5
    summary[_I_LSTD] = std
    summary[_I_SKEW] = float(_wmean(squared * centred, weights, total)) / std**3
    summary[_I_KURT] = np.log(max(float(_wmean(squared * squared, weights, total)) / std**4, EPS))
    summary[_I_CLIP_HI] = l_fine[388:].sum() / total  # L >= 97
    summary[_I_CLIP_LO] = l_fine[:12].sum() / total  # L < 3
    a, b = lab[..., 1], lab[..., 2]
    chroma = np.sqrt(a * a + b * b)
    (summary[_I_CP90],) = _hist_quantiles(chroma, weights, (0.9,), 0.0, 128.0, 512)
    hue = mean[1:]
    summary[_S_HUE] = hue / max(float(np.hypot(*hue)), 1.0)
    l_hist = l_fine.reshape(_L_BINS, -1).sum(axis=1) / total
    ai = _bin_index(a, -_AB_RANGE, _AB_RANGE, _AB_BINS)
    bi = _bin_index(b, -_AB_RANGE, _AB_RANGE, _AB_BINS)
    ab_hist = np.bincount(ai * _AB_BINS + bi, weights=weights.ravel(), minlength=_AB_BINS**2) / total
    return summary, l_hist, ab_hist


def _box_sums(values: np.ndarray, band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Box-window sums (normalized by the window) of ``values`` (h, w, c) over ``band``, and the band's coverage."""
    size = (LOCAL_WINDOW, LOCAL_WINDOW)
    coverage = cv2.boxFilter(band, cv2.CV_32F, size, borderType=cv2.BORDER_CONSTANT)
    sums = cv2.boxFilter(values * band[..., None], cv2.CV_32F, size, borderType=cv2.BORDER_CONSTANT)
    return sums, coverage


@dataclass(frozen=True)
class _Geometry:
    """Distances from the alpha's contour (alpha >= 0.5; working pixels), inside and outside the foreground."""

    inside: np.ndarray  # float32, distance to the nearest background pixel (0 outside)
    outside: np.ndarray  # float32, distance to the nearest foreground pixel (0 inside)


def _geometry(weights: np.ndarray) -> _Geometry:
    mask = (weights >= 0.5).astype(np.uint8)
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 3)
    return _Geometry(inside=inside, outside=outside)


def _band(distance: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return ((distance > lo) & (distance <= hi)).astype(np.float32)


def _boundary_features(work: _Working, geo: _Geometry) -> np.ndarray:
    """Colour continuity across the alpha's contour (11 values; NaN when there is no contour).

    The bands on either side start BAND_GAP pixels away from the contour, so that the exact
    placement of the contour (a rough polygon, a soft matte's transition) matters little.
    """
    out = np.full(11, np.nan)
    g, w = BAND_GAP, BAND
    inner, inner2 = _band(geo.inside, g, g + w), _band(geo.inside, g + w, g + 2 * w)
    outer, outer2 = _band(geo.outside, g, g + w), _band(geo.outside, g + w, g + 2 * w)
    contour = ((geo.inside > 0) & (geo.inside <= 1.0)) | ((geo.outside > 0) & (geo.outside <= 1.0))
    if inner.sum() < MIN_WEIGHT or outer.sum() < MIN_WEIGHT or contour.sum() < MIN_WEIGHT:
        return out
    log_lin = np.log(np.maximum(work.lin, 1e-4))
    chroma = np.stack([log_lin[..., 0] - log_lin[..., 1], log_lin[..., 2] - log_lin[..., 1]], axis=-1)
    values = np.concatenate([work.lab, chroma], axis=-1)
    # Local band means, evaluated on contour pixels only.
    means = {}
    for name, band in (("in", inner), ("in2", inner2), ("out", outer), ("out2", outer2)):
        sums, coverage = _box_sums(values, band)
        coverage = coverage[contour]
        means[name] = (sums[contour] / np.maximum(coverage, 1e-6)[:, None], coverage)
    sel = (means["in"][1] > 0.05) & (means["out"][1] > 0.05)
    if sel.sum() < MIN_WEIGHT:
        return out
    jump = (means["in"][0] - means["out"][0])[sel]  # (n, 5): L, a, b, log r/g, log b/g
    de = np.sqrt((jump[:, :3] ** 2).sum(axis=1))
    dchroma = np.sqrt((jump[:, 3:] ** 2).sum(axis=1))
    out[0:3] = np.abs(jump[:, :3]).mean(axis=0)
    out[3] = de.mean()
    out[4] = dchroma.mean()
    # Jumps one band deeper on either side of the contour: the image's own local variation.
    intra = []
    for a_name, b_name in (("in", "in2"), ("out", "out2")):
        ok = sel & (means[a_name][1] > 0.05) & (means[b_name][1] > 0.05)
        if ok.sum() >= MIN_WEIGHT:
            step = (means[a_name][0] - means[b_name][0])[ok]
            intra.append(
                (np.sqrt((step[:, :3] ** 2).sum(axis=1)).mean(), np.sqrt((step[:, 3:] ** 2).sum(axis=1)).mean())
            )
    if intra:
        intra_de = float(np.mean([v[0] for v in intra]))
        intra_chroma = float(np.mean([v[1] for v in intra]))
        out[5] = np.log((out[3] + 1.0) / (intra_de + 1.0))
        out[6] = np.log((out[4] + 0.02) / (intra_chroma + 0.02))
    # Sign consistency: a cast on the foreground makes the jump keep one sign around the contour.
    out[7] = abs(jump[:, 1].mean()) / (np.abs(jump[:, 1]).mean() + 0.5)
    out[8] = abs(jump[:, 2].mean()) / (np.abs(jump[:, 2]).mean() + 0.5)
    out[9] = abs(jump[:, 0].mean()) / (np.abs(jump[:, 0]).mean() + 0.5)
    # Whole-band illuminant (gray-world) jump.
    inner_rgb = _wmean(work.lin, inner, float(inner.sum()))
    outer_rgb = _wmean(work.lin, outer, float(outer.sum()))
    out[10] = float(np.hypot(*(_log_chroma(inner_rgb) - _log_chroma(outer_rgb))))
    return out


def _texture_features(work: _Working, fg_core: np.ndarray, surround: np.ndarray) -> np.ndarray:
    """Detail and grain of the foreground against its surroundings (5 log ratios; NaN without surroundings)."""
    out = np.full(5, np.nan)
    fg_total, bg_total = float(fg_core.sum()), float(surround.sum())
    if fg_total < MIN_WEIGHT or bg_total < MIN_WEIGHT:
        return out
    lab = work.lab
    blur1 = cv2.GaussianBlur(lab, (0, 0), 0.8)
    blur2 = cv2.GaussianBlur(blur1, (0, 0), 2.0)
    fine = np.abs(lab - blur1)
    mid = np.abs(blur1[..., 0] - blur2[..., 0])
    fine_l = fine[..., 0]
    fine_ab = fine[..., 1] + fine[..., 2]
    f_fg, f_bg = _wmean(fine_l, fg_core, fg_total) + 0.02, _wmean(fine_l, surround, bg_total) + 0.02
    m_fg, m_bg = _wmean(mid, fg_core, fg_total) + 0.02, _wmean(mid, surround, bg_total) + 0.02
    out[0] = np.log(f_fg / f_bg)
    out[1] = np.log(m_fg / m_bg)
    out[2] = out[0] - out[1]
    (n_fg,) = _hist_quantiles(fine_l, fg_core, (0.2,), 0.0, 4.0, 400)
    (n_bg,) = _hist_quantiles(fine_l, surround, (0.2,), 0.0, 4.0, 400)
    out[3] = np.log((n_fg + 0.02) / (n_bg + 0.02))
    c_fg, c_bg = _wmean(fine_ab, fg_core, fg_total) + 0.02, _wmean(fine_ab, surround, bg_total) + 0.02
    out[4] = np.log(c_fg / c_bg)
    return out


def _hist_overlap(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.minimum(p, q).sum())


def _log_ratio(a: float, b: float, eps: float) -> float:
    return float(np.log((a + eps) / (b + eps)))


def describe_reference(image: np.ndarray, weights: np.ndarray) -> ReferenceFeatures:
    """Statistics of the reference region ``weights`` (float (H, W) in [0, 1]) of RGB uint8 ``image``."""
    work = _to_working(image, weights)
    if work.weights.sum() < 1.0:
        raise ValueError("the reference region is empty")
    summary, l_hist, ab_hist = _region_summary(work, work.weights, _gray_edge_map(work.lin))
    return ReferenceFeatures(summary=summary, l_hist=l_hist, ab_hist=ab_hist, palette=palette_features(work.lab, work.weights))


def harmony_features(composite: np.ndarray, alpha: np.ndarray, reference: ReferenceFeatures) -> np.ndarray:
    """The feature vector (in FEATURE_NAMES order) of the foreground ``alpha`` in ``composite``."""
    return all_features(composite, alpha, reference)[0]


def all_features(
    composite: np.ndarray, alpha: np.ndarray, reference: ReferenceFeatures
) -> tuple[np.ndarray, np.ndarray]:
    """The photographic features (FEATURE_NAMES) and the style relations (style_score.STYLE_NAMES)
    of the foreground ``alpha`` in ``composite``, from one working copy."""
    work = _to_working(composite, alpha)
    fg = work.weights
    if fg.sum() < 1.0:
        raise ValueError("the foreground is empty")
    geo = _geometry(fg)
    core = fg * (geo.inside > BAND_GAP)
    fg_core = core if core.sum() >= MIN_WEIGHT else fg
    edges = _gray_edge_map(work.lin)
    summary, l_hist, ab_hist = _region_summary(work, fg_core, edges)
    ref = reference.summary
    feats: list[float] = []
    diffs = np.array([summary[part] - ref[part] for part in (_S_GW, _S_BP, _S_GE, _S_SOG)])
    feats += list(np.hypot(diffs[:, 0], diffs[:, 1]))
    feats.append(float(diffs.std(axis=0).sum()))
    feats += list(summary[_S_LP] - ref[_S_LP])
    feats.append(_log_ratio(summary[_I_LSTD], ref[_I_LSTD], 1.0))
    feats.append(summary[_I_SKEW] - ref[_I_SKEW])
    feats.append(summary[_I_KURT] - ref[_I_KURT])
    feats.append(summary[_I_CLIP_HI] - ref[_I_CLIP_HI])
    feats.append(summary[_I_CLIP_LO] - ref[_I_CLIP_LO])
    feats.append(_hist_overlap(l_hist, reference.l_hist))
    feats.append(_hist_overlap(ab_hist, reference.ab_hist))
    feats.append(_log_ratio(summary[_I_CP90], ref[_I_CP90], 2.0))
    feats.append(float(np.dot(summary[_S_HUE], ref[_S_HUE])))
    feats += list(_boundary_features(work, geo))
    surround = _band(geo.outside, BAND_GAP, SURROUND) * (1.0 - fg)
    feats += list(_texture_features(work, fg_core, surround))
    vector = np.asarray(feats, dtype=np.float64)
    # NaN marks a cue that cannot be measured here (no contour, no surroundings): the model
    # then takes the training mean for it. Infinities cannot arise but would be treated alike.
    vector[~np.isfinite(vector)] = np.nan
    return vector, style_features(work.lab, fg_core, surround, reference.palette)


class HarmonyScorer:
    """Probability that a foreground belongs to its reference (1 = harmonious)."""

    def __init__(self, weights: Mapping[str, np.ndarray], style: StyleModel = FITTED_STYLE_MODEL) -> None:
        self._style = style
        names = tuple(str(n) for n in np.asarray(weights["feature_names"]).tolist())
        if names != FEATURE_NAMES:
            raise ValueError("the model was trained on other features than this code computes")
        self._mean = np.asarray(weights["feature_mean"], dtype=np.float64)
        self._scale = np.asarray(weights["feature_scale"], dtype=np.float64)
        self._clip = float(np.asarray(weights["feature_clip"]))
        self._layers: list[tuple[np.ndarray, np.ndarray]] = []
        index = 0
        while f"w{index}" in weights:
            self._layers.append(
                (np.asarray(weights[f"w{index}"], dtype=np.float64), np.asarray(weights[f"b{index}"], dtype=np.float64))
            )
            index += 1
        if not self._layers:
            raise ValueError("the model has no layers")

    def describe_reference(self, image: np.ndarray, weights: np.ndarray) -> ReferenceFeatures:
        """Statistics of the reference region ``weights`` (float (H, W) in [0, 1]) of RGB uint8 ``image``."""
        return describe_reference(image, weights)

    def features(self, composite: np.ndarray, alpha: np.ndarray, reference: ReferenceFeatures) -> np.ndarray:
        """The feature vector (in FEATURE_NAMES order) of the foreground ``alpha`` in ``composite``."""
        return harmony_features(composite, alpha, reference)

    def probability(self, features: np.ndarray) -> np.ndarray:
        """Scores of feature rows (n, F) or one vector (F,)."""
        x = (np.asarray(features, dtype=np.float64) - self._mean) / self._scale
        x = np.clip(np.nan_to_num(x, nan=0.0), -self._clip, self._clip)
        for index, (w, b) in enumerate(self._layers):
            x = x @ w + b
            if index < len(self._layers) - 1:
                x = np.maximum(x, 0.0)
        logit = x[..., 0]
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -40.0, 40.0)))

    def parts(self, composite: np.ndarray, alpha: np.ndarray, reference: ReferenceFeatures) -> tuple[float, float]:
        """(photographic, painterly): the probability that the foreground passes as part of the
        same photo; and that it is painted like the paint around it, counted as far as its
        surroundings look like paint (style_score.paint_likeness)."""
        photo, style = all_features(composite, alpha, reference)
        return float(self.probability(photo)), self._style.probability(style) * paint_likeness(style)

    def __call__(self, composite: np.ndarray, alpha: np.ndarray, reference: ReferenceFeatures) -> float:
        """The harmony score: the subject belongs if it passes as the same photo or as the same paint.

        The two parts as independent judges (1 - (1 - photographic)(1 - painterly)). On a painting
        every photographed subject fails the photographic question (a painted-in one too), and the
        painterly part tells painted-in from pasted; around a photo the painterly part is held
        down, and where the paint-likeness cue mistakes a photo for paint, the photographic part
        still counts in full (taking the larger part instead let the painterly one overrule it:
        one iHarmony4 sample got twice the error)."""
        photographic, painterly = self.parts(composite, alpha, reference)
        return 1.0 - (1.0 - photographic) * (1.0 - painterly)

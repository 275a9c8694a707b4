"""Matting quality at a booth's resolutions: today's capture matting against the new one, in one run.

On ../shared/data/matting (portraits with hand-made ground-truth alpha, see its README), each photo
shrunk to a long side of 640 and 1280 and at full size goes through each path as a capture does:
the segmenter `kiosk.engine.build_capture_segmenter` builds from the settings, then the foreground
colours. Printed per photo and as means, with the new path's ratio to today's:

- the standard matting errors (Rhemann et al. 2009, as the Deep Image Matting evaluation code
  computes them, over the whole image as trimap-free portrait matting reports them): SAD / 1000,
  MSE, gradient error / 1000 (Gaussian derivatives, sigma 1.4), connectivity error / 1000
  (thresholds in steps of 0.1, largest 4-connected component);
- `edge`: the composite over mid grey (our alpha and foreground colours) against the photo over
  mid grey through the ground-truth alpha, mean absolute error in 8-bit levels inside the edge
  band (0 < ground truth < 1, dilated by 1% of the long side);
- `leak` and `fg`: the room's colour at the edge. The photo is re-composited through its
  ground-truth alpha over a saturated green room, so its true foreground and room are known.
  `leak`: the path's composite of that over mid grey against the truth's, inside the edge band:
  the mean size of the room's share there (`room_share`: each pixel's error split into a change
  of opacity and a share of the room, added or over-corrected away; 0.01 is 1%). `fg`: the
  foreground colours alone, given the true alpha: mean absolute error times alpha in 8-bit levels
  inside the band;
- `seg_s` / `fg_s`: seconds per photo for segmentation (network and refinement) and foreground;
  and the median segmentation time of 1280x720 crops of the photos, against MODNet's bare
  inference at today's 512 px measured in the same run (the machine may be shared: the ratio
  travels better than the milliseconds).

Today's path is the settings of before issue 12 (TODAY: MODNet at a long side of 512, the guided
filter, no band solve); the new one is the settings' (kiosk/settings.py: MODNet at 416, closed-form
matting in the band). Both use the pipeline's foreground colours (blur fusion); `--options` adds
the variants measured on the way: `band512` (the band solve on MODNet at 512), `noband` (MODNet at
the new size without the band solve) and `new+ml` (the
new alpha with pymatting's multi-level foreground in place of blur fusion).
Targets (issue 12): MSE <= 2.5e-3 at every size, SAD <= 0.6x today's at 1280 and full size,
segmentation + refinement <= 700 ms for a 1280x720 photo on 2 cores.

    .venv/bin/python bench/matting.py [--data DIR] [--limit N] [--sizes 640,1280,full] [--options]
                                      [--runs N] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import scipy.ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.engine import build_capture_segmenter  # noqa: E402
from kiosk.models import ModelStore  # noqa: E402
from kiosk.settings import Settings  # noqa: E402
from pipeline.codec import decode_image  # noqa: E402
from pipeline.matting import estimate_foreground  # noqa: E402

DATA_DIR = ROOT.parent / "shared/data/matting"
GREY = 0.5
ROOM = np.array([0.1, 0.85, 0.2], np.float32)  # a saturated green wall
EDGE_BAND_DILATION = 0.01  # of the long side
METRICS = ("sad", "mse", "grad", "conn", "edge", "leak", "fg", "seg_s", "fg_s")
TARGET_MSE = 2.5e-3
TARGET_SAD_RATIO = 0.6
TARGET_SEGMENTATION_S = 0.7


# --- the standard matting errors (alphas as float in [0, 1]) ------------------------------------


def sad(alpha: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(alpha - truth).sum() / 1000.0)


def mse(alpha: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean((alpha - truth) ** 2))


def _gaussian_gradient(image: np.ndarray, sigma: float = 1.4) -> tuple[np.ndarray, np.ndarray]:
    """The DIM evaluation's gaussgradient: first derivative of a Gaussian, kernel normalised to unit energy."""
    epsilon = 1e-2
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * epsilon))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(u**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    dgauss = -u * gauss / sigma**2
    hx = np.outer(gauss, dgauss)
    hx /= np.sqrt(np.sum(hx * hx))
    return (
        scipy.ndimage.convolve(image, hx, mode="nearest"),
        scipy.ndimage.convolve(image, hx.T, mode="nearest"),
    )


def gradient_error(alpha: np.ndarray, truth: np.ndarray) -> float:
    ax, ay = _gaussian_gradient(alpha.astype(np.float64))
    tx, ty = _gaussian_gradient(truth.astype(np.float64))
    return float(np.sum((np.hypot(ax, ay) - np.hypot(tx, ty)) ** 2) / 1000.0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def connectivity_error(alpha: np.ndarray, truth: np.ndarray, step: float = 0.1) -> float:
    thresholds = np.arange(0.0, 1.0 + step, step)
    level = np.full(alpha.shape, -1.0)
    for previous, threshold in zip(thresholds[:-1], thresholds[1:]):
        omega = _largest_component((alpha >= threshold) & (truth >= threshold))
        level[(level == -1) & ~omega] = previous
    level[level == -1] = 1.0
    alpha_d = alpha - level
    truth_d = truth - level
    alpha_phi = 1.0 - alpha_d * (alpha_d >= 0.15)
    truth_phi = 1.0 - truth_d * (truth_d >= 0.15)
    return float(np.sum(np.abs(alpha_phi - truth_phi)) / 1000.0)


def edge_band(truth: np.ndarray) -> np.ndarray:
    radius = max(1, round(EDGE_BAND_DILATION * max(truth.shape)))
    fractional = ((truth > 0) & (truth < 1)).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(fractional, kernel) > 0


def over_grey(colours: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``colours`` (uint8 RGB) through ``alpha`` over mid grey, as float RGB in [0, 1]."""
    a = alpha[:, :, None].astype(np.float32)
    return colours.astype(np.float32) / 255.0 * a + GREY * (1.0 - a)


def room_share(difference: np.ndarray, person: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Each pixel's share of the room's colour in a composite's error (N x 3 arrays in 8-bit levels,
    colours minus the new background's; ``room`` one colour). The error is split, by least squares, into a change
    of opacity (along ``person``: an edge drawn fainter or stronger) and a share of the room (along
    ``room``: added, or over-corrected and taken away). Pixels where the person's colour is close to
    the background's or to the room's, which cannot be told apart, are left out."""
    pp, pr, rr = np.sum(person * person, axis=1), person @ room, float(room @ room)
    pe, re = np.sum(person * difference, axis=1), difference @ room
    determinant = pp * rr - pr * pr
    separable = (pp > 20.0**2) & (determinant > 0.1 * pp * rr)
    return (pp * re - pr * pe)[separable] / determinant[separable]


# --- the foreground colours measured -------------------------------------------------------------


def multilevel_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """pymatting's multi-level foreground estimation (Germer et al. 2020), the candidate of issue 12."""
    from pymatting import estimate_foreground_ml

    colours = estimate_foreground_ml(image.astype(np.float32) / 255.0, alpha.astype(np.float32))
    return np.clip(np.rint(colours * 255.0), 0, 255).astype(np.uint8)


# --- the paths -----------------------------------------------------------------------------------

# The capture matting's settings before issue 12.
TODAY = {"matting_long_side": 512, "matting_band_solve": False}


@dataclasses.dataclass
class MattingPath:
    name: str
    segmenter: Callable[[np.ndarray], np.ndarray]
    foreground: Callable[[np.ndarray, np.ndarray], np.ndarray]

    def run(self, photo: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
        start = time.perf_counter()
        alpha = self.segmenter(photo)
        middle = time.perf_counter()
        colours = self.foreground(photo, alpha)
        return alpha, colours, middle - start, time.perf_counter() - middle


def build_paths(settings: Settings, store: ModelStore, options: bool) -> list[MattingPath]:
    """Today's path first and the new one (the settings' segmenter, the pipeline's foreground) last;
    with ``options`` the variants measured on the way between them."""
    today = build_capture_segmenter(dataclasses.replace(settings, **TODAY), store)
    new = build_capture_segmenter(settings, store)
    paths = [MattingPath("today", today, estimate_foreground)]
    if options:
        band_at_512 = build_capture_segmenter(dataclasses.replace(settings, matting_long_side=512), store)
        paths.append(MattingPath("band512", band_at_512, estimate_foreground))
        no_band = build_capture_segmenter(dataclasses.replace(settings, matting_band_solve=False), store)
        paths.append(MattingPath("noband", no_band, estimate_foreground))
        paths.append(MattingPath("new+ml", new, multilevel_foreground))
    paths.append(MattingPath("new", new, estimate_foreground))
    return paths


def load_pairs(data_dir: Path, limit: int | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    pairs = []
    for photo_path in sorted(data_dir.glob("*.jpg"))[:limit]:
        truth_path = photo_path.with_name(photo_path.stem + "_alpha.png")
        photo = decode_image(photo_path.read_bytes(), max_pixels=50_000_000)
        truth = cv2.imread(str(truth_path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        pairs.append((photo_path.stem, photo, truth))
    return pairs


def shrunk(image: np.ndarray, long_side: int | None) -> np.ndarray:
    height, width = image.shape[:2]
    if long_side is None or max(height, width) <= long_side:
        return image
    scale = long_side / max(height, width)
    return cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)


def measure(path: MattingPath, photo: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    alpha, colours, seg_s, fg_s = path.run(photo)
    band = edge_band(truth)
    edge = float(np.abs(over_grey(colours, alpha) - over_grey(photo, truth))[band].mean() * 255.0)

    # The same person in front of a green room, so the true foreground (the photo) and room are known.
    t = truth[:, :, None]
    in_room = np.clip(np.rint((photo.astype(np.float32) / 255.0 * t + ROOM * (1.0 - t)) * 255.0), 0, 255)
    in_room = in_room.astype(np.uint8)
    towards_room = ROOM - GREY
    # leak: the whole path (its own alpha and colours).
    room_alpha, room_colours, _, _ = path.run(in_room)
    error = (over_grey(room_colours, room_alpha) - over_grey(photo, truth)) * 255.0
    person = photo.astype(np.float32) - GREY * 255.0
    leak = float(np.mean(np.abs(room_share(error[band], person[band], towards_room * 255.0))))
    # fg: the foreground colours alone, given the true alpha.
    colours_error = (path.foreground(in_room, truth).astype(np.float32) - photo.astype(np.float32)) * t
    return {
        "sad": sad(alpha, truth),
        "mse": mse(alpha, truth),
        "grad": gradient_error(alpha, truth),
        "conn": connectivity_error(alpha, truth),
        "edge": edge,
        "leak": leak,
        "fg": float(np.abs(colours_error)[band].mean()),
        "seg_s": seg_s,
        "fg_s": fg_s,
    }


def booth_photo(photo: np.ndarray) -> np.ndarray:
    """``photo`` cropped to 16:9 about its centre and scaled to 1280x720, a booth camera's frame."""
    height, width = photo.shape[:2]
    crop_h = min(height, round(width * 9 / 16))
    crop_w = round(crop_h * 16 / 9)
    y0, x0 = (height - crop_h) // 2, (width - crop_w) // 2
    return cv2.resize(photo[y0 : y0 + crop_h, x0 : x0 + crop_w], (1280, 720), interpolation=cv2.INTER_AREA)


def time_booth_photos(paths: list[MattingPath], store: ModelStore, photos: list[np.ndarray], runs: int) -> dict[str, float]:
    """Median seconds of each path's segmentation (network and refinement) on 1280x720 photos, and
    MODNet's bare inference at today's network size in the same run, interleaved."""
    session = store.modnet_session()
    blob = np.zeros((1, 3, 288, 512), np.float32)  # 1280x720 at a long side of 512
    times: dict[str, list[float]] = {"bare MODNet 512": [], **{path.name: [] for path in paths}}
    for _ in range(runs):
        for photo in photos:
            start = time.perf_counter()
            session.run(None, {session.get_inputs()[0].name: blob})
            times["bare MODNet 512"].append(time.perf_counter() - start)
            for path in paths:
                start = time.perf_counter()
                path.segmenter(photo)
                times[path.name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--sizes", default="640,1280,full", help="long sides, comma separated; full: as stored")
    parser.add_argument("--options", action="store_true", help="also the variants between today's path and the new one")
    parser.add_argument("--runs", type=int, default=3, help="timing runs over the 1280x720 photos (default 3)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)

    settings = Settings.load()
    store = ModelStore(settings)
    paths = build_paths(settings, store, args.options)
    names = [path.name for path in paths]
    pairs = load_pairs(args.data, args.limit)
    if not pairs:
        print(f"no photos with ground truth in {args.data}", file=sys.stderr)
        return 1
    sizes = [None if size == "full" else int(size) for size in args.sizes.split(",")]
    # Warm each path once (numba's compiled kernels load, onnxruntime allocates) before timing.
    for path in paths:
        path.run(shrunk(pairs[0][1], 640))

    results: dict[str, object] = {}
    for size in sizes:
        size_name = "full" if size is None else str(size)
        by_path: dict[str, dict[str, dict[str, float]]] = {name: {} for name in names}
        for photo_name, photo, truth in pairs:
            small_photo, small_truth = shrunk(photo, size), shrunk(truth, size)
            for path in paths:
                by_path[path.name][photo_name] = measure(path, small_photo, small_truth)
        results[size_name] = by_path
        print_table(size_name, by_path, names)
    booth = time_booth_photos(paths, store, [booth_photo(photo) for _, photo, _ in pairs], args.runs)
    results["booth_1280x720_seconds"] = booth
    print_summary({k: v for k, v in results.items() if k != "booth_1280x720_seconds"}, names, booth)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _fmt(metric: str, value: float) -> str:
    if metric == "mse":
        return f"{value:.2e}"
    if metric in ("seg_s", "fg_s"):
        return f"{value:.2f}"
    if metric == "leak":
        return f"{value:.3f}"
    return f"{value:.2f}"


def print_table(size_name: str, by_path: dict[str, dict[str, dict[str, float]]], names: list[str]) -> None:
    print(f"\nlong side {size_name}")
    header = f"{'photo':<12} {'path':<8} " + " ".join(f"{m:>9}" for m in METRICS)
    print(header)
    photos = list(next(iter(by_path.values())))
    for photo in [*photos, "mean"]:
        for name in names:
            rows = by_path[name]
            values = {m: statistics.fmean(rows[p][m] for p in photos) for m in METRICS} if photo == "mean" else rows[photo]
            print(f"{photo:<12} {name:<8} " + " ".join(f"{_fmt(m, values[m]):>9}" for m in METRICS))
    today = names[0]
    for name in names[1:]:
        ratios = {
            m: statistics.fmean(by_path[name][p][m] for p in photos)
            / max(abs(statistics.fmean(by_path[today][p][m] for p in photos)), 1e-12)
            for m in METRICS
        }
        print(f"{'mean ratio':<12} {name:<8} " + " ".join(f"{ratios[m]:>9.2f}" for m in METRICS))


def print_summary(results: dict, names: list[str], booth: dict[str, float]) -> None:
    today, new = names[0], names[-1]
    print(f"\ntargets ({new} path against {today}):")
    for size_name, by_path in results.items():
        photos = list(by_path[new])
        mean_new = {m: statistics.fmean(by_path[new][p][m] for p in photos) for m in METRICS}
        mean_today = {m: statistics.fmean(by_path[today][p][m] for p in photos) for m in METRICS}
        sad_ratio = mean_new["sad"] / mean_today["sad"]
        print(
            f"  {size_name:>5}: MSE {mean_new['mse']:.2e} (<= {TARGET_MSE:.1e}: {'yes' if mean_new['mse'] <= TARGET_MSE else 'NO'}), "
            f"SAD {mean_new['sad']:.2f} = {sad_ratio:.2f}x today's"
            + ("" if size_name == "640" else f" (<= {TARGET_SAD_RATIO}x: {'yes' if sad_ratio <= TARGET_SAD_RATIO else 'NO'})")
        )
    bare = booth["bare MODNet 512"]
    print(f"\nsegmentation of a 1280x720 photo, median (bare MODNet inference at 512: {bare * 1000:.0f} ms):")
    for name in names:
        seconds = booth[name]
        verdict = f" (<= {TARGET_SEGMENTATION_S * 1000:.0f} ms: {'yes' if seconds <= TARGET_SEGMENTATION_S else 'NO'})" if name == new else ""
        print(f"  {name:<8} {seconds * 1000:6.0f} ms = {seconds / bare:.2f}x bare MODNet{verdict}")


if __name__ == "__main__":
    sys.exit(main())

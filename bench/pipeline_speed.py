"""Capture pipeline speed: median per-stage times, model loading, peak memory.

A 1280x720 photo (a real one from ../shared/data/people when present, else the astronaut)
composed onto a 1920x1080 artwork. The baseline, measured in the same run, is MODNet's bare
network inference at the same size: `segmentation / baseline` is what the resizing and the
guided-filter refinement cost on top of the network itself.

    .venv/bin/python bench/pipeline_speed.py [--runs N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.artworks import ArtworkLibrary, load_artwork  # noqa: E402
from kiosk.engine import Engine, build_compositor  # noqa: E402
from kiosk.models import ModelStore  # noqa: E402
from kiosk.settings import Settings  # noqa: E402
from pipeline.codec import decode_image, encode_image  # noqa: E402
from pipeline.types import StageTimings  # noqa: E402

SHARED_PHOTO = ROOT.parent / "shared/data/people/julia_trotti_17.jpg"
# harmonize: fit and score four candidates, apply the best, texture and edge, for a 1920x1080 result.
TARGETS_MS = {"segmentation": 700.0, "faces": 150.0, "harmonize": 400.0, "compose": 1000.0, "model_loading": 5000.0}
TARGET_RSS_MB = 1536.0


def load_photo() -> tuple[np.ndarray, str]:
    if SHARED_PHOTO.exists():
        photo = decode_image(SHARED_PHOTO.read_bytes(), max_pixels=50_000_000)
        source, centred = SHARED_PHOTO.name, True
    else:
        import skimage.data

        # Square, with her face in the upper half: a centred 16:9 crop would cut it off.
        photo, source, centred = skimage.data.astronaut(), "skimage astronaut", False
    # Crop to 16:9, then scale to 1280x720, as a booth camera would frame it.
    height, width = photo.shape[:2]
    crop_h = min(height, round(width * 9 / 16))
    crop_w = round(crop_h * 16 / 9)
    y0, x0 = ((height - crop_h) // 2 if centred else 0), (width - crop_w) // 2
    photo = cv2.resize(photo[y0 : y0 + crop_h, x0 : x0 + crop_w], (1280, 720), interpolation=cv2.INTER_AREA)
    return photo, source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    settings = Settings.load()
    photo, source = load_photo()
    meadow = ArtworkLibrary(settings).source("demo-golden-meadow")
    artwork = load_artwork(meadow, max_pixels=settings.max_image_pixels)
    assert artwork.image.shape[:2] == (1080, 1920)

    start = time.perf_counter()
    compositor = build_compositor(settings)
    loading_ms = (time.perf_counter() - start) * 1000.0

    session = ModelStore(settings).modnet_session()
    blob = np.zeros((1, 3, 288, 512), np.float32)  # MODNet's input for 1280x720 at 512 px
    engine = Engine(settings)
    engine.__dict__["compositor"] = compositor  # reuse the loaded models
    photo_jpeg = encode_image(photo, ".jpg")

    stages: dict[str, list[float]] = {}
    baseline, compose_ms, end_to_end_ms = [], [], []
    for run in range(args.runs + 1):  # the first run warms caches and is dropped
        timings = StageTimings()
        start = time.perf_counter()
        compositor(photo, artwork, timings)
        total = (time.perf_counter() - start) * 1000.0
        start = time.perf_counter()
        session.run(None, {"input": blob})
        inference = (time.perf_counter() - start) * 1000.0
        start = time.perf_counter()
        result = engine.compose(photo_jpeg, meadow)
        whole = (time.perf_counter() - start) * 1000.0
        if run == 0:
            continue
        for stage, ms in timings.ms.items():
            stages.setdefault(stage, []).append(ms)
        baseline.append(inference)
        compose_ms.append(total)
        end_to_end_ms.append(whole)

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    medians = {stage: statistics.median(values) for stage, values in stages.items()}
    baseline_ms = statistics.median(baseline)
    figures = {
        "photo": source,
        "photo_size": [1280, 720],
        "artwork_size": [1920, 1080],
        "runs": args.runs,
        "stages_ms": {k: round(v, 1) for k, v in medians.items()},
        "compose_ms": round(statistics.median(compose_ms), 1),
        "compose_with_decode_encode_ms": round(statistics.median(end_to_end_ms), 1),
        "baseline_modnet_inference_ms": round(baseline_ms, 1),
        "segmentation_over_baseline": round(medians["segmentation"] / baseline_ms, 2),
        "model_loading_ms": round(loading_ms, 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "people": result.composition.subject.people,
        "framing": result.composition.subject.framing.value,
    }

    print(f"photo: {source}, 1280x720 -> 1920x1080 artwork, median of {args.runs} runs")
    print(f"{'stage':<34}{'median ms':>10}{'target':>10}{'ratio':>8}")
    rows = [(stage, ms, TARGETS_MS.get(stage)) for stage, ms in medians.items()]
    rows += [
        ("compose (faces..blend)", figures["compose_ms"], None),
        ("compose without harmonize", figures["compose_ms"] - medians.get("harmonize", 0.0), TARGETS_MS["compose"]),
        ("compose + decode + JPEG encode", figures["compose_with_decode_encode_ms"], None),
        ("baseline: bare MODNet inference", baseline_ms, None),
        ("model loading", loading_ms, TARGETS_MS["model_loading"]),
    ]
    for name, ms, target in rows:
        ratio = f"{ms / target:.2f}" if target else ""
        print(f"{name:<34}{ms:>10.1f}{(f'{target:.0f}' if target else ''):>10}{ratio:>8}")
    print(f"segmentation / bare inference: {figures['segmentation_over_baseline']:.2f}x")
    print(f"peak RSS: {peak_rss_mb:.0f} MB (target {TARGET_RSS_MB:.0f} MB, ratio {peak_rss_mb / TARGET_RSS_MB:.2f})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

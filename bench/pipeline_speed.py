"""Capture pipeline speed, for each look: median per-stage times, model loading, peak memory; and,
with --pool, the first capture after a start against the next ones (the compose workers warm up).

A 1280x720 photo (a real one from ../shared/data/people when present, else the astronaut)
composed onto a 1920x1080 artwork, in the realistic and the painted look, through the engine as a
worker runs it (decode .. JPEG encode). The baseline, measured in the same run, is MODNet's bare
network inference at the same size: each look's `compose / baseline` ratio says what the whole
pipeline costs in units of one network run on this machine now (the machine may be shared: the
ratios travel better than the milliseconds). Faces are found on another thread while the matte is
made: "faces (beside)" is not added to the whole, and "segmentation" lasts until both are done.

    .venv/bin/python bench/pipeline_speed.py [--runs N] [--json OUT] [--pool CAPTURES]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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
from kiosk.engine import Engine  # noqa: E402
from kiosk.looks import Harmonization  # noqa: E402
from kiosk.models import ModelStore  # noqa: E402
from kiosk.settings import LOOKS, Settings  # noqa: E402
from pipeline.codec import decode_image, encode_image  # noqa: E402

# Marks a stage that ran on another thread during another one (faces beside segmentation): not added up.
BESIDE = " (beside)"
SHARED_PHOTO = ROOT.parent / "shared/data/people/julia_trotti_17.jpg"
# harmonize: fit and score four candidates, apply the best, texture and edge, for a 1920x1080 result.
TARGETS_MS = {"segmentation": 700.0, f"faces{BESIDE}": 150.0, "harmonize": 400.0, "compose": 1500.0, "model_loading": 5000.0}
TARGET_RSS_MB = 1536.0
# Stages of the pipeline itself (not the engine's bookkeeping: artwork cache, compositor lookup).
NOT_COMPOSING = ("artwork", "models")



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
    parser.add_argument("--pool", type=int, default=0, metavar="CAPTURES",
                        help="also start a compose pool (1 worker), and time this many captures after its warm-up")
    args = parser.parse_args()

    settings = Settings.load()
    photo, source = load_photo()
    meadow = ArtworkLibrary(settings).source("demo-golden-meadow")
    assert load_artwork(meadow, max_pixels=settings.max_image_pixels).image.shape[:2] == (1080, 1920)

    engine = Engine(settings)
    start = time.perf_counter()
    engine.compositor, engine.painted_stage  # noqa: B018 - every model, as a worker's warm-up loads them
    loading_ms = (time.perf_counter() - start) * 1000.0
    session = ModelStore(settings).modnet_session()
    blob = np.zeros((1, 3, 288, 512), np.float32)  # MODNet's input for 1280x720 at 512 px
    photo_jpeg = encode_image(photo, ".jpg")
    looks = {look: dataclasses.replace(Harmonization.from_settings(settings), look=look) for look in LOOKS}

    stages: dict[str, dict[str, list[float]]] = {look: {} for look in LOOKS}
    whole: dict[str, list[float]] = {look: [] for look in LOOKS}
    baseline = []
    for run in range(args.runs + 1):  # the first run warms caches (and the artwork's style) and is dropped
        start = time.perf_counter()
        session.run(None, {"input": blob})
        inference = (time.perf_counter() - start) * 1000.0
        for look, harmonization in looks.items():
            start = time.perf_counter()
            result = engine.compose(photo_jpeg, meadow, harmonization=harmonization)
            total = (time.perf_counter() - start) * 1000.0
            if run == 0:
                continue
            for stage, ms in result.composition.timings.ms.items():
                stages[look].setdefault(stage, []).append(ms)
            for stage, ms in result.composition.timings.beside.items():
                stages[look].setdefault(f"{stage}{BESIDE}", []).append(ms)
            whole[look].append(total)
        if run:
            baseline.append(inference)

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    medians = {look: {stage: statistics.median(v) for stage, v in by_stage.items()} for look, by_stage in stages.items()}
    baseline_ms = statistics.median(baseline)
    realistic = medians["realistic"]
    figures = {
        "photo": source,
        "photo_size": [1280, 720],
        "artwork_size": [1920, 1080],
        "runs": args.runs,
        "stages_ms": {k: round(v, 1) for k, v in realistic.items()},
        "compose_ms": round(
            sum(ms for stage, ms in realistic.items() if stage not in NOT_COMPOSING + ("decode", "encode") and not stage.endswith(BESIDE)), 1
        ),
        "compose_with_decode_encode_ms": round(statistics.median(whole["realistic"]), 1),
        "looks": {
            look: {
                "stages_ms": {k: round(v, 1) for k, v in medians[look].items()},
                "compose_ms": round(statistics.median(whole[look]), 1),
                "compose_over_baseline": round(statistics.median(whole[look]) / baseline_ms, 2),
            }
            for look in LOOKS
        },
        "baseline_modnet_inference_ms": round(baseline_ms, 1),
        "segmentation_over_baseline": round(realistic["segmentation"] / baseline_ms, 2),
        "model_loading_ms": round(loading_ms, 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "people": result.composition.subject.people,
        "framing": result.composition.subject.framing.value,
    }

    print(f"photo: {source}, 1280x720 -> 1920x1080 artwork, median of {args.runs} runs")
    print(f"{'stage (ms)':<34}" + "".join(f"{look:>12}" for look in LOOKS) + f"{'target':>10}")
    names = list(dict.fromkeys(stage for look in LOOKS for stage in medians[look]))
    for stage in names:
        cells = "".join(f"{medians[look][stage]:>12.1f}" if stage in medians[look] else f"{'':>12}" for look in LOOKS)
        target = TARGETS_MS.get(stage)
        print(f"{stage:<34}{cells}{(f'{target:.0f}' if target else ''):>10}")
    print(f"{'compose (decode .. encode)':<34}" + "".join(f"{figures['looks'][look]['compose_ms']:>12.1f}" for look in LOOKS)
          + f"{TARGETS_MS['compose']:>10.0f}")
    print(f"{'compose / baseline':<34}" + "".join(f"{figures['looks'][look]['compose_over_baseline']:>12.2f}" for look in LOOKS))
    print(f"{'compose / target':<34}"
          + "".join(f"{figures['looks'][look]['compose_ms'] / TARGETS_MS['compose']:>12.2f}" for look in LOOKS))
    print(f"baseline: bare MODNet inference {baseline_ms:.1f} ms; segmentation / bare inference: "
          f"{figures['segmentation_over_baseline']:.2f}x")
    print(f"model loading (every model, the stylization networks too): {loading_ms:.0f} ms (target {TARGETS_MS['model_loading']:.0f})")
    print(f"peak RSS: {peak_rss_mb:.0f} MB (target {TARGET_RSS_MB:.0f} MB, ratio {peak_rss_mb / TARGET_RSS_MB:.2f})")
    if args.pool:
        figures["pool"] = asyncio.run(first_captures(settings, photo_jpeg, meadow, args.pool))
        pool = figures["pool"]
        print(f"compose pool: warm-up {pool['warm_up_ms']:.0f} ms; first capture {pool['captures_ms'][0]:.0f} ms, "
              f"the next ones {', '.join(f'{ms:.0f}' for ms in pool['captures_ms'][1:])} ms (painted look)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


async def first_captures(settings: Settings, photo_jpeg: bytes, artwork, captures: int) -> dict[str, object]:
    """A fresh compose pool, as `serve` starts it: its warm-up, then ``captures`` captures in the painted look."""
    from kiosk.workers import ComposePool

    pool = ComposePool(dataclasses.replace(settings, compose_workers=1))
    try:
        start = time.perf_counter()
        warm_ups = await pool.warm_up()
        warm_up_ms = (time.perf_counter() - start) * 1000.0
        painted = dataclasses.replace(pool.harmonization, look="painted")
        times = []
        for _ in range(captures):
            start = time.perf_counter()
            outcome = await pool.compose(photo_jpeg, artwork, harmonization=painted)
            times.append(round((time.perf_counter() - start) * 1000.0, 1))
            assert outcome.ok, outcome.error
    finally:
        await pool.close()
    return {"warm_up_ms": round(warm_up_ms, 1), "worker_warm_up": warm_ups[0]["ms"], "captures_ms": times}


if __name__ == "__main__":
    main()

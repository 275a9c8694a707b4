"""The benchmarks the README shows run as written (their figures are read by people, not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parents[1]


def test_pipeline_speed_runs_and_reports_every_stage(tmp_path, models_dir):
    report = tmp_path / "speed.json"
    finished = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "pipeline_speed.py"), "--runs", "1", "--json", str(report)],
        env={**os.environ, "ARTBOOTH_DATA_DIR": str(tmp_path / "data"), "ARTBOOTH_MODELS_DIR": str(models_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    assert "peak RSS" in finished.stdout
    figures = json.loads(report.read_text())
    assert {"faces (beside)", "segmentation", "harmonize", "blend"} <= set(figures["stages_ms"])
    assert figures["people"] >= 1 and figures["framing"] in ("close-up", "half-body", "full-body")
    assert figures["compose_with_decode_encode_ms"] > 0 and figures["peak_rss_mb"] > 0


def write_rgb(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def test_painterly_runs_on_a_data_folder_and_reports_each_method(tmp_path, models_dir):
    """bench/painterly.py on a made-up --data folder: one painterly composite, one person, one painting."""
    data = tmp_path / "shared"
    bricks = cv2.resize(skimage.data.brick(), (720, 480), interpolation=cv2.INTER_AREA).astype(np.float32)
    painting = np.clip(bricks[..., None] * np.array([1.2, 0.6, 0.25]) + 20, 0, 255).astype(np.uint8)
    write_rgb(data / "paintings" / "bricks.png", painting)
    write_rgb(data / "people" / "astronaut.png", skimage.data.astronaut())
    mask = np.zeros((480, 720), np.uint8)
    cv2.ellipse(mask, (360, 260), (110, 160), 0, 0, 360, 255, -1)
    cat = cv2.resize(skimage.data.chelsea(), (720, 480), interpolation=cv2.INTER_AREA)
    write_rgb(data / "painterly" / "1.png", np.where(mask[..., None] > 127, cat, painting))
    cv2.imwrite(str(data / "painterly" / "1_mask.png"), mask)

    report = tmp_path / "painterly.json"
    finished = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "painterly.py"), "--data", str(data), "--limit", "1", "--json", str(report)],
        env={**os.environ, "ARTBOOTH_DATA_DIR": str(tmp_path / "data"), "ARTBOOTH_MODELS_DIR": str(models_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    assert "ratio to plain paste" in finished.stdout and "faces still found" in finished.stdout
    figures = json.loads(report.read_text())
    assert {"plain paste", "pipeline"} <= set(figures["methods"])
    summary = figures["summary"]
    assert set(summary) == {"painterly", "people x paintings"}
    for per_method in summary.values():
        assert per_method["plain paste"]["style_ratio"] == 1.0 and per_method["plain paste"]["content"] == 0.0
        assert all(per_method[name]["style"] > 0 for name in figures["methods"])
    people = summary["people x paintings"]["plain paste"]
    assert people["faces_before"] >= 1 and people["faces_kept"] == people["faces_before"]
    assert people["face_chroma_checks"] >= 1


def test_capture_runs_a_booth_in_chromium_and_reports_both_looks(tmp_path, models_dir):
    """bench/capture.py with one capture per look: a real `artbooth serve`, Chromium at the booth."""
    report = tmp_path / "capture.json"
    finished = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "capture.py"), "--captures", "1", "--json", str(report)],
        env={**os.environ, "ARTBOOTH_MODELS_DIR": str(models_dir)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    assert "capture to QR at the booth" in finished.stdout and "first capture (painted)" in finished.stdout
    figures = json.loads(report.read_text())
    assert set(figures["median_ms"]) == {"realistic", "painted"} and figures["ratio_to_realistic"]["realistic"] == 1.0
    assert figures["first_capture_ms"] > 0 and all(len(v) == 1 for v in figures["capture_to_qr_ms"].values())

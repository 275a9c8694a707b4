"""bench/matting.py runs as the README shows it (its figures are read by people, not asserted)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_matting_benchmark_prints_both_paths_on_a_made_up_data_folder(settings, astronaut, tmp_path):
    data = tmp_path / "matting"
    data.mkdir()
    photo = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(data / "p_1.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    yy, xx = np.mgrid[:320, :320]
    truth = np.clip((110 - np.hypot(xx - 160, yy - 200)) / 4 + 0.5, 0, 1)  # a soft disc where she is
    cv2.imwrite(str(data / "p_1_alpha.png"), np.rint(truth * 255).astype(np.uint8))
    report = tmp_path / "matting.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "matting.py"), "--data", str(data), "--sizes", "full", "--runs", "1",
         "--json", str(report)],
        env=os.environ | {"ARTBOOTH_MODELS_DIR": str(settings.models_dir), "ARTBOOTH_DATA_DIR": str(settings.data_dir)},
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "targets (new path against today)" in done.stdout and "segmentation of a 1280x720 photo" in done.stdout
    figures = json.loads(report.read_text())
    for path in ("today", "new"):
        row = figures["full"][path]["p_1"]
        assert set(row) == {"sad", "mse", "grad", "conn", "edge", "leak", "fg", "seg_s", "fg_s"}
        assert all(math.isfinite(value) for value in row.values())
        assert figures["booth_1280x720_seconds"][path] > 0

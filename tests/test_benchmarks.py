"""The benchmarks the README shows run as written (their figures are read by people, not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    assert {"faces", "segmentation", "harmonize", "blend"} <= set(figures["stages_ms"])
    assert figures["people"] >= 1 and figures["framing"] in ("close-up", "half-body", "full-body")
    assert figures["compose_with_decode_encode_ms"] > 0 and figures["peak_rss_mb"] > 0

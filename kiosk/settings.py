"""The one settings object of ArtBooth.

Values come from, in rising priority: the defaults below, an optional TOML file
(``ARTBOOTH_CONFIG`` or ``--config``), and ``ARTBOOTH_<FIELD>`` environment variables.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import platformdirs

from kiosk.errors import ArtBoothError, ExitCode

ENV_PREFIX = "ARTBOOTH_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"

SEGMENTER_BACKENDS = ("modnet", "rmbg-1.4", "rmbg-2.0")
HARMONIZE_TARGETS = ("learned", "fitted")


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("artbooth", appauthor=False))


def _default_models_dir() -> Path:
    return Path(platformdirs.user_cache_dir("artbooth", appauthor=False)) / "models"


class SettingsError(ArtBoothError):
    exit_code = ExitCode.BAD_SETTINGS


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=_default_data_dir)
    models_dir: Path = field(default_factory=_default_models_dir)
    host: str = "127.0.0.1"
    port: int = 8080
    # Empty means "derive from host and port"; booths need a LAN address phones can reach.
    public_url: str = ""
    # A folder of artwork images with JSON sidecars; empty means ``<data_dir>/artworks``.
    artworks_dir: Path | None = None

    # Decompression-bomb guard: images whose header declares more pixels are refused unread.
    max_image_pixels: int = 40_000_000
    max_upload_bytes: int = 30 * 1024 * 1024

    segmenter: str = "modnet"
    matting_long_side: int = 512
    # Radius (at full resolution) of the guided filter that carries the low-res alpha to full size.
    matting_refine_radius: int = 8
    # A local directory or Hugging Face repo id for the RMBG backends.
    rmbg_model: str = ""
    # Hub downloads are opt-in: kiosks and CI are often offline.
    allow_model_download: bool = False

    face_min_size_px: int = 40
    face_min_probability: float = 0.9
    # MTCNN runs on a copy no larger than this (long side): faces at a booth are large.
    face_detect_long_side: int = 960

    harmonize: bool = True
    # "learned" (a model trained here predicts the subject's target look) or "fitted" (match the reference).
    harmonize_targets: str = "learned"
    # 1 moves the subject all the way to its target look (within the operators' bounds); 0 leaves it.
    harmonize_strength: float = 1.0

    compose_workers: int = 1
    torch_threads: int = 0  # 0: let torch decide

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("0.0.0.0", "::", "127.0.0.1") else self.host
        return f"http://{host}:{self.port}"

    @property
    def resolved_artworks_dir(self) -> Path:
        return self.artworks_dir if self.artworks_dir is not None else self.data_dir / "artworks"

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        config_file: Path | str | None = None,
    ) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        config_path = config_file or environ.get(CONFIG_ENV)
        if config_path:
            values.update(_read_config_file(Path(config_path)))
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = raw
        return cls(**{name: _coerce(cls, name, value) for name, value in values.items()})

    def __post_init__(self) -> None:
        if self.segmenter not in SEGMENTER_BACKENDS:
            raise SettingsError(
                f"segmenter must be one of {', '.join(SEGMENTER_BACKENDS)}, not {self.segmenter!r}"
            )
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be 1-65535, not {self.port}")
        if self.max_image_pixels <= 0 or self.max_upload_bytes <= 0:
            raise SettingsError("max_image_pixels and max_upload_bytes must be positive")
        if self.harmonize_targets not in HARMONIZE_TARGETS:
            raise SettingsError(
                f"harmonize_targets must be one of {', '.join(HARMONIZE_TARGETS)}, not {self.harmonize_targets!r}"
            )
        if not 0.0 <= self.harmonize_strength <= 1.0:
            raise SettingsError(f"harmonize_strength must be in 0..1, not {self.harmonize_strength}")
        if self.compose_workers < 1:
            raise SettingsError("compose_workers must be at least 1")

    def describe(self) -> dict[str, object]:
        """Settings as plain JSON-friendly values, for `artbooth settings` and logs."""
        return {
            f.name: (str(v) if isinstance(v, Path) else v)
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        }


def _read_config_file(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(f"config file {path} has unknown settings: {', '.join(unknown)}")
    return data


def _coerce(cls: type[Settings], name: str, value: object) -> object:
    hints = typing.get_type_hints(cls)
    target = hints[name]
    optional = type(None) in typing.get_args(target)
    if optional:
        target = next(t for t in typing.get_args(target) if t is not type(None))
        if value in ("", None):
            return None
    try:
        if target is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true/false, got {value!r}")
        if target is Path:
            return Path(str(value)).expanduser()
        return target(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name} ({ENV_PREFIX}{name.upper()}): {exc}") from None

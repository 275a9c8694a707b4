"""Booths send the camera's largest still (issue 12): the engine composes it at photo_max_long_side."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from kiosk.artworks import ArtworkSource
from kiosk.engine import Engine
from kiosk.settings import Settings
from pipeline.codec import encode_image
from pipeline.types import ArtworkSpec, Framing, NormBox


def test_a_still_larger_than_the_working_size_is_composed_shrunk(
    session_settings: Settings, astronaut: np.ndarray, tmp_path: Path
) -> None:
    settings = dataclasses.replace(session_settings, photo_max_long_side=640, harmonize=False, compose_warm_up=False)
    still = cv2.resize(astronaut, (1600, 1600), interpolation=cv2.INTER_CUBIC)  # a camera's 2.6 MP still
    painting = np.full((600, 800, 3), (120, 110, 90), np.uint8)
    (tmp_path / "grey.png").write_bytes(encode_image(painting, ".png"))
    spec = ArtworkSpec("grey", "Grey", "", "", {f: NormBox(0.3, 0.2, 0.7, 1.0) for f in Framing})

    result = Engine(settings).compose(encode_image(still, ".jpg"), ArtworkSource(spec, tmp_path / "grey.png"))

    # The visitor was cut out of a 640x640 copy, and still lands in the artwork at its own size.
    assert result.composition.subject.alpha.shape == (640, 640)
    assert result.composition.image.shape == painting.shape
    assert len(result.composition.subject.faces) == 1

"""`artbooth cutout` as staff and integrators run it: the installed console script in a subprocess."""

from __future__ import annotations

import json

import numpy as np
import pytest
import skimage.data
from PIL import Image

from cli_helpers import run
from imagefiles import encoded
from kiosk.errors import ExitCode
from pipeline.codec import decode_image


def test_cutout_is_the_visitor_as_captures_cut_them_out(env, compositor, astronaut, tmp_path):
    photo_bytes = encoded(astronaut, quality=95)
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(photo_bytes)
    out = tmp_path / "visitor.png"
    done = run(["cutout", str(photo), "-o", str(out), "--json"], env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    image = Image.open(out)
    assert image.mode == "RGBA" and image.size == (512, 512)
    rgba = np.asarray(image)
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    assert report["size"] == [512, 512] and report["output"] == str(out) and report["seconds"] > 0
    assert report["people"] == 1
    assert report["coverage"] == pytest.approx(alpha.mean(), abs=0.002)
    assert 0.3 < report["coverage"] < 0.8, "the astronaut, not the whole photo nor a sliver of it"

    # Exactly what a capture composes: the same matte and colours as the capture pipeline's.
    decoded = decode_image(photo_bytes, max_pixels=50_000_000)
    subject, foreground = compositor.cut_out(decoded)
    assert np.abs(alpha - subject.alpha).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(rgba[..., :3], foreground)
    solid = rgba[..., 3] == 255
    assert np.array_equal(rgba[..., :3][solid], decoded[solid]), "inside the visitor the photo is untouched"
    assert rgba[0, 0, 3] == 0 and rgba[0, -1, 3] == 0, "the room behind her is gone"


@pytest.mark.parametrize(
    ("make_photo", "code", "message"),
    [
        (lambda a: b"", ExitCode.EMPTY_FILE, "the file is empty"),
        (lambda a: b"%PDF-1.4 not a photo at all" * 10, ExitCode.NOT_AN_IMAGE, "the file is not an image"),
        (lambda a: encoded(a)[:20_000], ExitCode.TRUNCATED_IMAGE, "truncated"),
        (lambda a: encoded(skimage.data.coffee()), ExitCode.NO_PERSON, "no person found"),
    ],
    ids=["zero-bytes", "not-an-image", "truncated", "no-person"],
)
def test_bad_photos_get_one_clear_line_and_their_exit_code(env, astronaut, tmp_path, make_photo, code, message):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(make_photo(astronaut))
    out = tmp_path / "visitor.png"
    done = run(["cutout", str(photo), "-o", str(out)], env)
    assert done.returncode == code
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("artbooth: error:"), done.stderr
    assert not out.exists()


def test_photo_over_the_pixel_limit_missing_photo_and_bad_outputs(env, astronaut, tmp_path):
    photo = tmp_path / "big.png"
    photo.write_bytes(encoded(astronaut, "PNG"))
    big = run(["cutout", str(photo), "-o", str(tmp_path / "v.png")], env | {"ARTBOOTH_MAX_IMAGE_PIXELS": "200000"})
    assert big.returncode == ExitCode.IMAGE_TOO_LARGE
    assert "512x512 = 262,144 pixels, over the limit of 200,000" in big.stderr and str(photo) in big.stderr

    missing = run(["cutout", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "v.png")], env)
    assert missing.returncode == ExitCode.INPUT_NOT_FOUND and "no such file" in missing.stderr

    jpeg = run(["cutout", str(photo), "-o", str(tmp_path / "v.jpg")], env)
    assert jpeg.returncode == ExitCode.USAGE and "must end in .png" in jpeg.stderr

    no_folder = run(["cutout", str(photo), "-o", str(tmp_path / "nowhere" / "v.png")], env)
    assert no_folder.returncode == ExitCode.USAGE and "does not exist" in no_folder.stderr
    assert not list(tmp_path.glob("**/v.*"))

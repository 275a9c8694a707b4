"""Every kind of photo a visitor's phone or a staff member's scanner may hand us."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagefiles import encoded, with_exif_orientation
from pipeline.codec import decode_image, encode_image
from pipeline.errors import EmptyImageError, ImageTooLargeError, NotAnImageError, TruncatedImageError

LIMIT = 40_000_000


def test_zero_bytes_is_refused_as_empty():
    with pytest.raises(EmptyImageError, match="empty"):
        decode_image(b"", max_pixels=LIMIT)


def test_text_is_refused_as_not_an_image():
    with pytest.raises(NotAnImageError, match="not an image"):
        decode_image(b"name,age\nada,36\n" * 20, max_pixels=LIMIT)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_refused(astronaut, fmt):
    data = encoded(astronaut, fmt)
    with pytest.raises(TruncatedImageError, match="truncated"):
        decode_image(data[: len(data) // 2], max_pixels=LIMIT)


def test_pixel_limit_refuses_before_decoding(astronaut):
    with pytest.raises(ImageTooLargeError, match="512x512 = 262,144 pixels, over the limit of 100,000"):
        decode_image(encoded(astronaut, "PNG"), max_pixels=100_000)


def test_decompression_bomb_header_is_refused_unread():
    # 30000 x 30000 one-bit pixels compress to a few kilobytes but would decode to 900 MB.
    bomb = encoded(Image.new("1", (30_000, 30_000)), "PNG")
    assert len(bomb) < 200_000
    with pytest.raises(ImageTooLargeError, match="900,000,000 pixels, over the limit of 40,000,000"):
        decode_image(bomb, max_pixels=LIMIT)


def test_grayscale_becomes_rgb(astronaut):
    gray = np.asarray(Image.fromarray(astronaut).convert("L"))
    rgb = decode_image(encoded(gray, "PNG"), max_pixels=LIMIT)
    assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[..., 0], gray) and np.array_equal(rgb[..., 2], gray)


def test_rgba_is_flattened_onto_white(astronaut):
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    rgba[:100, :100, 3] = 0
    rgb = decode_image(encoded(rgba, "PNG"), max_pixels=LIMIT)
    assert rgb.shape == (512, 512, 3)
    assert (rgb[:100, :100] == 255).all()
    assert np.array_equal(rgb[200:, 200:], astronaut[200:, 200:])


def test_sixteen_bit_grayscale_is_scaled_to_eight_bits():
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (64, 1))
    rgb = decode_image(encoded(Image.fromarray(ramp), "PNG"), max_pixels=LIMIT)
    assert rgb.shape == (64, 256, 3)
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255 and abs(int(rgb[0, 128, 1]) - 128) <= 1


def test_sixteen_bit_colour_png_is_converted(astronaut):
    import cv2

    deep = astronaut[:, :, ::-1].astype(np.uint16) * 257  # BGR for OpenCV, full 16-bit range
    ok, png = cv2.imencode(".png", deep)
    assert ok
    rgb = decode_image(png.tobytes(), max_pixels=LIMIT)
    assert rgb.dtype == np.uint8 and rgb.shape == astronaut.shape
    assert np.abs(rgb.astype(int) - astronaut).max() <= 1


def test_cmyk_jpeg_is_converted(astronaut):
    cmyk = Image.fromarray(astronaut).convert("CMYK")
    rgb = decode_image(encoded(cmyk, "JPEG", quality=95), max_pixels=LIMIT)
    assert rgb.shape == astronaut.shape
    assert np.abs(rgb.astype(int) - astronaut).mean() < 8


def test_exif_rotation_is_applied(astronaut):
    # Orientation 6: the camera stored the picture turned; viewers rotate it 90 degrees clockwise.
    stored = np.ascontiguousarray(np.rot90(astronaut, 1))
    upright = decode_image(with_exif_orientation(stored, 6), max_pixels=LIMIT)
    assert upright.shape == astronaut.shape
    assert np.abs(upright.astype(int) - astronaut).mean() < 6


def test_encode_roundtrip_and_unknown_suffix(astronaut):
    png = encode_image(astronaut, ".png")
    assert np.array_equal(decode_image(png, max_pixels=LIMIT), astronaut)
    with pytest.raises(ValueError, match="cannot write '.gif'"):
        encode_image(astronaut, ".gif")

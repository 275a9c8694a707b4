"""Stored images carry pixels only: no EXIF (GPS above all), XMP, ICC profile or comment."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from db.images import THUMBNAIL_LONG_SIDE, prepare_photo_files, strip_metadata
from imagefiles import encoded, with_exif_orientation
from pipeline.codec import decode_image, encode_image
from pipeline.errors import ImageTooLargeError, NotAnImageError

MAX_PIXELS = 40_000_000

# What a metadata-free baseline JPEG may contain: start, JFIF header, tables, frame, scan.
_ALLOWED_MARKERS = {0xD8, 0xE0, 0xDB, 0xC4, 0xDD, 0xC0, 0xC1, 0xC2, 0xDA}


def jpeg_markers(data: bytes) -> set[int]:
    """The markers of a JPEG's header segments, up to the start of the scan."""
    assert data[:2] == b"\xff\xd8"
    markers, position = {0xD8}, 2
    while True:
        marker = data[position + 1]
        markers.add(marker)
        if marker == 0xDA:
            return markers
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length


def gradient(width: int, height: int) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    red, green = np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width))
    return np.stack([red, green, np.full((height, width), 128.0)], axis=2).astype(np.uint8)


def phone_jpeg(width: int = 160, height: int = 120) -> bytes:
    """A JPEG as a phone writes it: EXIF with GPS coordinates and camera, XMP, an ICC profile, a comment."""
    image = Image.fromarray(gradient(width, height))
    exif = image.getexif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone 15"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 21.0, 36.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 12.1)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><exif:GPSLatitude>52,21.6N</exif:GPSLatitude></x:xmpmeta>'
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encoded(image, "JPEG", quality=90, exif=exif, xmp=xmp, icc_profile=icc, comment=b"taken at 52.36N 4.89E")


def assert_metadata_free(data: bytes) -> None:
    assert jpeg_markers(data) <= _ALLOWED_MARKERS, f"unexpected segments {sorted(hex(m) for m in jpeg_markers(data))}"
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert len(image.getexif()) == 0
        assert not {"exif", "xmp", "icc_profile", "comment"} & set(image.info)
    for trace in (b"Exif\x00\x00", b"adobe:ns:meta", b"PhoneMaker", b"52.36N"):
        assert trace not in data


def test_the_phone_jpeg_really_carries_gps():
    # Guards the test below against passing because the input had nothing to strip.
    data = phone_jpeg()
    with Image.open(io.BytesIO(data)) as image:
        assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] == (52.0, 21.0, 36.5)
        assert {"xmp", "icc_profile", "comment"} <= set(image.info)
    assert jpeg_markers(data) - _ALLOWED_MARKERS


def test_gps_exif_xmp_icc_and_comments_are_stripped():
    cleaned = strip_metadata(phone_jpeg(), max_pixels=MAX_PIXELS)
    assert_metadata_free(cleaned)
    with Image.open(io.BytesIO(cleaned)) as image:
        assert image.size == (160, 120)
        # Re-encoded, not emptied: the picture is still the picture.
        difference = np.abs(np.asarray(image.convert("RGB"), np.int16) - gradient(160, 120).astype(np.int16))
        assert difference.mean() < 3


def test_exif_orientation_is_applied_before_it_is_dropped():
    upright = gradient(80, 40)  # landscape as the visitor saw it
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # how a phone held sideways stores it
    cleaned = strip_metadata(with_exif_orientation(stored, 6), max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(cleaned)) as image:
        assert image.size == (80, 40)
        pixels = np.asarray(image.convert("RGB"), np.int16)
    assert np.abs(pixels - upright.astype(np.int16)).mean() < 4


def test_png_text_chunks_do_not_survive():
    info = PngImagePlugin.PngInfo()
    info.add_text("Location", "52.36N 4.89E")
    cleaned = strip_metadata(encoded(gradient(50, 30), "PNG", pnginfo=info), max_pixels=MAX_PIXELS)
    assert_metadata_free(cleaned)


def test_prepared_files_are_clean_with_a_thumbnail_of_the_long_side():
    files = prepare_photo_files(phone_jpeg(1000, 600), phone_jpeg(300, 200), max_pixels=MAX_PIXELS)
    for data in (files.result, files.thumbnail, files.raw):
        assert data is not None
        assert_metadata_free(data)
    with Image.open(io.BytesIO(files.thumbnail)) as thumbnail:
        assert thumbnail.size == (THUMBNAIL_LONG_SIDE, 288)
    assert prepare_photo_files(phone_jpeg(), None, max_pixels=MAX_PIXELS).raw is None


def test_a_non_image_is_refused():
    with pytest.raises(NotAnImageError):
        strip_metadata(b"definitely not an image", max_pixels=MAX_PIXELS)


def test_the_engines_own_jpeg_is_kept_byte_for_byte_with_its_thumbnail():
    # The engine encodes its results with nothing but pixels in them: a second encoding would only
    # lose quality (and time, with the visitor waiting for the QR code).
    picture = gradient(1920, 1080)
    result = encode_image(picture, ".jpg")
    files = prepare_photo_files(result, None, max_pixels=MAX_PIXELS)
    assert files.result == result
    assert_metadata_free(files.result)
    assert_metadata_free(files.thumbnail)
    with Image.open(io.BytesIO(files.thumbnail)) as thumbnail:
        assert thumbnail.size == (THUMBNAIL_LONG_SIDE, 270)
        shown = np.asarray(thumbnail.convert("RGB"), np.int16)
    expected = np.asarray(Image.fromarray(picture).resize((THUMBNAIL_LONG_SIDE, 270), Image.Resampling.LANCZOS), np.int16)
    assert np.abs(shown - expected).mean() < 3


def _after_header(jpeg: bytes, segment: bytes) -> bytes:
    """``jpeg`` (as the engine writes it: start, then its 18-byte JFIF header) with ``segment`` after that header."""
    assert jpeg[2:4] == b"\xff\xe0" and jpeg[4:6] == b"\x00\x10"
    return jpeg[:20] + segment + jpeg[20:]


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


@pytest.mark.parametrize(
    "hide",
    [
        pytest.param(lambda jpeg: _after_header(jpeg, _segment(0xFE, b"taken at 52.36N 4.89E")), id="comment"),
        pytest.param(lambda jpeg: _after_header(jpeg, _segment(0xE1, b"Exif\x00\x00PhoneMaker 52.36N")), id="exif"),
        pytest.param(lambda jpeg: _after_header(jpeg, _segment(0xED, b"Photoshop 3.0\x00PhoneMaker")), id="iptc"),
        pytest.param(lambda jpeg: jpeg + b"PhoneMaker 52.36N", id="bytes after the end"),
        pytest.param(
            # A JFIF header that carries a 1x1 thumbnail of its own.
            lambda jpeg: jpeg[:2] + _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x01\x01" + b"52.") + jpeg[20:],
            id="jfif thumbnail",
        ),
        pytest.param(
            # Between the scans of a progressive JPEG, where a reader of the header alone would not look.
            lambda jpeg: _between_scans(encoded(gradient(320, 240), "JPEG", quality=90, progressive=True), _segment(0xFE, b"PhoneMaker")),
            id="between scans",
        ),
    ],
)
def test_a_result_with_anything_but_pixels_in_it_is_encoded_again(hide):
    result = hide(encode_image(gradient(320, 240), ".jpg"))
    files = prepare_photo_files(result, None, max_pixels=MAX_PIXELS)
    assert files.result != result
    assert_metadata_free(files.result)
    assert b"52.3" not in files.result and b"PhoneMaker" not in files.result
    assert np.abs(decode_image(files.result, max_pixels=MAX_PIXELS).astype(np.int16) - gradient(320, 240)).mean() < 3


def _between_scans(jpeg: bytes, segment: bytes) -> bytes:
    second_scan = jpeg.index(b"\xff\xda", jpeg.index(b"\xff\xda") + 2)
    return jpeg[:second_scan] + segment + jpeg[second_scan:]


def test_a_kept_result_is_still_held_to_the_pixel_limit():
    with pytest.raises(ImageTooLargeError):
        prepare_photo_files(encode_image(gradient(400, 300), ".jpg"), None, max_pixels=400 * 300 - 1)

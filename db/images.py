"""The files we keep of a composition, free of metadata.

Phones put GPS coordinates, device serials and times in EXIF and XMP; editors add more. Copying
metadata across is opt-out in image libraries, so every stored image is re-encoded here from
its pixels alone: no EXIF, XMP, IPTC, ICC profile or comment survives. The one exception is a
result that is already a JPEG of pixels alone (the engine's output, checked segment by
segment): it is kept as it is. The pipeline ignores ICC profiles when it reads photos, so
dropping them changes nothing it computed.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image

from pipeline.codec import decode_image, read_size

RESULT_QUALITY = 92
# Raw photos are kept for recomposing later; spend bytes so a second generation loses little.
RAW_QUALITY = 95
THUMBNAIL_LONG_SIDE = 480
THUMBNAIL_QUALITY = 82
# JPEG markers (ITU T.81): the segments that describe pixels (frames SOF0-SOF2, Huffman tables,
# quantisation tables, restart interval, start of scan), the JFIF header's APP0, and the end.
_START_OF_SCAN = 0xDA
_END_OF_IMAGE = 0xD9
_APP0 = 0xE0
_PIXEL_SEGMENTS = {0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD, _START_OF_SCAN}
# In entropy-coded data 0xFF is followed by 0x00 (a stuffed byte) or a restart marker 0xD0-0xD7;
# anything else is the next segment (0xFF fill bytes may come before it: the last 0xFF is its start).
_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# EXIF orientations that turn the picture by a quarter: upright, its width is the stored height.
_QUARTER_TURNED = {5, 6, 7, 8}


@dataclass(frozen=True)
class PhotoFiles:
    result: bytes
    thumbnail: bytes
    raw: bytes | None


def prepare_photo_files(result: bytes, raw: bytes | None, *, max_pixels: int) -> PhotoFiles:
    """The composition, its thumbnail and (when given) the visitor's photo, as metadata-free JPEGs.

    A result that is already a JPEG of pixels alone (``holds_only_pixels``: the engine's own
    output) is kept byte for byte: encoding it again would only lose quality, and took a third of
    the time a capture spends being stored. It is still decoded, at thumbnail size, which reads
    every pixel, so a damaged file is refused all the same.

    Raises the pipeline's image errors (pipeline.errors) for input that is not a usable image.
    """
    if holds_only_pixels(result):
        kept = result
        thumbnail = thumbnail_jpeg(
            decode_image(result, max_pixels=max_pixels, long_side_at_least=THUMBNAIL_LONG_SIDE), long_side=THUMBNAIL_LONG_SIDE
        )
    else:
        pixels = decode_image(result, max_pixels=max_pixels)
        kept = encode_clean_jpeg(pixels, quality=RESULT_QUALITY)
        thumbnail = thumbnail_jpeg(pixels, long_side=THUMBNAIL_LONG_SIDE)
    return PhotoFiles(
        result=kept,
        thumbnail=thumbnail,
        raw=strip_metadata(raw, max_pixels=max_pixels, quality=RAW_QUALITY) if raw is not None else None,
    )


def holds_only_pixels(data: bytes) -> bool:
    """Whether ``data`` is a JPEG whose every segment describes pixels: a bare JFIF header (no
    thumbnail in it), quantisation and Huffman tables, frame, restart interval and scans, and
    nothing after its end. Any other segment (EXIF, XMP, ICC, IPTC, Adobe, comments) or trailing
    bytes: False, and the file is re-encoded."""
    if not (data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")):
        return False
    position = 2
    try:
        while True:
            if data[position] != 0xFF:
                return False
            marker = data[position + 1]
            if marker == _END_OF_IMAGE:
                return position + 2 == len(data)
            (length,) = struct.unpack_from(">H", data, position + 2)
            if marker == _APP0:
                if not _is_bare_jfif(data[position + 4 : position + 2 + length]):
                    return False
            elif marker not in _PIXEL_SEGMENTS:
                return False
            position += 2 + length
            if marker == _START_OF_SCAN:
                # The entropy-coded data runs to the next marker that is not a stuffed 0xFF or a restart.
                found = _MARKER_AFTER_SCAN.search(data, position)
                if found is None:
                    return False
                position = found.start()
    except (IndexError, struct.error):
        return False


def _is_bare_jfif(body: bytes) -> bool:
    # "JFIF\0", version, density unit and values, then the embedded thumbnail's width and height: 0 and 0.
    return len(body) == 14 and body.startswith(b"JFIF\x00") and body[12:14] == b"\x00\x00"


def upright_size(data: bytes, *, max_pixels: int) -> tuple[int, int]:
    """The width and height of the image in ``data`` the right way up (its EXIF orientation
    applied, as the pipeline decodes it), read from its header alone; the decoder's errors for
    a file that cannot be opened."""
    width, height = read_size(data, max_pixels=max_pixels)
    try:
        with Image.open(io.BytesIO(data)) as image:
            orientation = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:
        # Damaged EXIF: the decoder refuses such a photo before anything is stored; no turn assumed.
        orientation = None
    return (height, width) if orientation in _QUARTER_TURNED else (width, height)


def strip_metadata(data: bytes, *, max_pixels: int, quality: int = RESULT_QUALITY) -> bytes:
    """Any image the pipeline reads, as an upright JPEG with nothing but pixels in it."""
    return encode_clean_jpeg(decode_image(data, max_pixels=max_pixels), quality=quality)


def encode_clean_jpeg(pixels: np.ndarray, *, quality: int) -> bytes:
    return _save_jpeg(Image.fromarray(np.ascontiguousarray(pixels)), quality)


def thumbnail_jpeg(pixels: np.ndarray, *, long_side: int, quality: int = THUMBNAIL_QUALITY) -> bytes:
    image = Image.fromarray(np.ascontiguousarray(pixels))
    image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    return _save_jpeg(image, quality)


def _save_jpeg(image: Image.Image, quality: int) -> bytes:
    # Only for images made from arrays: their .info is empty, so Pillow has no metadata to
    # carry over (it copies comments, for one, unless told otherwise).
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()

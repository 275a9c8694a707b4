"""The files we keep of a composition, free of metadata.

Phones put GPS coordinates, device serials and times in EXIF and XMP; editors add more. Copying
metadata across is opt-out in image libraries, so every stored image is re-encoded here from
its pixels alone: no EXIF, XMP, IPTC, ICC profile or comment survives. The pipeline ignores
ICC profiles when it reads photos, so dropping them changes nothing it computed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image

from pipeline.codec import decode_image, read_size

RESULT_QUALITY = 92
# Raw photos are kept for recomposing later; spend bytes so a second generation loses little.
RAW_QUALITY = 95
THUMBNAIL_LONG_SIDE = 480
THUMBNAIL_QUALITY = 82
# EXIF orientations that turn the picture by a quarter: upright, its width is the stored height.
_QUARTER_TURNED = {5, 6, 7, 8}


@dataclass(frozen=True)
class PhotoFiles:
    result: bytes
    thumbnail: bytes
    raw: bytes | None


def prepare_photo_files(result: bytes, raw: bytes | None, *, max_pixels: int) -> PhotoFiles:
    """The composition, its thumbnail and (when given) the visitor's photo, as metadata-free JPEGs.

    Raises the pipeline's image errors (pipeline.errors) for input that is not a usable image.
    """
    pixels = decode_image(result, max_pixels=max_pixels)
    return PhotoFiles(
        result=encode_clean_jpeg(pixels, quality=RESULT_QUALITY),
        thumbnail=thumbnail_jpeg(pixels, long_side=THUMBNAIL_LONG_SIDE),
        raw=strip_metadata(raw, max_pixels=max_pixels, quality=RAW_QUALITY) if raw is not None else None,
    )


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

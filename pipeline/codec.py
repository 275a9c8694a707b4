"""Turn uploaded bytes into an upright RGB photo, or a clear error.

Phones, scanners and editors hand us grayscale, RGBA, 16-bit, CMYK and EXIF-rotated files;
those are converted. Empty, non-image, truncated and oversized files are refused before
any large allocation happens.

Pillow's format plugins are parsers of untrusted bytes: besides OSError (a file that ends
early, a decoder that gives up) they let through whatever their parsing trips over on
nonsense: ValueError, SyntaxError, struct.error, EOFError, IndexError, KeyError, TypeError,
ZeroDivisionError (all found by fuzzing), and more in formats nobody fuzzed. Each is the
file's fault, never a reason for a 500, so every Exception from a Pillow call becomes one of
our errors (pipeline/errors.py); the guarded calls are kept small so that our own code is not
among them.
"""

from __future__ import annotations

import io
import math
import re
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.errors import EmptyImageError, ImageTooLargeError, NotAnImageError, TruncatedImageError

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def decode_image(data: bytes, *, max_pixels: int, long_side_at_least: int | None = None) -> np.ndarray:
    """Decode ``data`` to an RGB uint8 array with the EXIF orientation applied.

    ``long_side_at_least``: only a picture that large is needed (a thumbnail), so a JPEG is decoded
    at the smallest of its built-in reductions (1/2, 1/4, 1/8) whose long side is still at least
    that; every pixel of the file is still read, so a damaged one is refused as in full. Other
    formats decode in full.

    Raises only the pipeline's image errors: EmptyImageError, NotAnImageError (no format we
    know), ImageTooLargeError, and TruncatedImageError for a file whose format we know but whose
    header, pixels or EXIF cannot be read (cut short, or damaged).
    """
    image = _open(data, max_pixels=max_pixels)
    width, height = image.size
    if long_side_at_least is not None and image.format == "JPEG":
        scale = min(1.0, long_side_at_least / max(width, height))
        try:
            # Pillow picks the reduction that keeps both sides at least this size.
            image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))
        except Exception:
            raise TruncatedImageError("its header cannot be read") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except Image.DecompressionBombError:
        raise ImageTooLargeError(max_pixels, size=(width, height)) from None
    except Exception:
        raise TruncatedImageError() from None
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:
        raise TruncatedImageError("its EXIF data, which says which way up the picture goes, is damaged") from None
    try:
        return _to_rgb8(image)
    except Exception:
        raise NotAnImageError(f"its pixels (mode {image.mode}) cannot be converted to colour") from None


def shrunk_to(image: np.ndarray, long_side: int) -> np.ndarray:
    """``image`` scaled down (area-averaged) so its long side is at most ``long_side``; else itself."""
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def read_size(data: bytes, *, max_pixels: int) -> tuple[int, int]:
    """The width and height ``data`` declares, read from its header alone (no pixels are
    decoded); the same errors as decode_image for a file that cannot be opened."""
    return _open(data, max_pixels=max_pixels).size


def _open(data: bytes, *, max_pixels: int) -> Image.Image:
    """The image with its header read and its size checked against ``max_pixels``, pixels not yet decoded."""
    if not data:
        raise EmptyImageError()
    try:
        with warnings.catch_warnings():
            # Pillow warns and then errors on bombs by its own global limit; ours is a setting.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise NotAnImageError("unrecognised format") from None
    except Image.DecompressionBombError as exc:
        # Pillow's own hard limit fired before we could read the size; its message has the count.
        match = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageTooLargeError(max_pixels, pixels=int(match.group(1)) if match else None) from None
    except Exception:
        # A format plugin knew the first bytes and then could not read the header.
        raise TruncatedImageError("its header cannot be read") from None

    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(max_pixels, size=(width, height))
    if width <= 0 or height <= 0:
        raise NotAnImageError("it has no pixels")
    return image


def _to_rgb8(image: Image.Image) -> np.ndarray:
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        if image.mode != "F":
            pixels = pixels / 257.0  # 65535 -> 255
        elif pixels.max(initial=0.0) <= 1.0:
            pixels = pixels * 255.0  # float images in 0..1; others are already 0..255
        gray = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white, as a viewer would show them on a page.
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        image = canvas
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


ENCODINGS = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png", ".webp": ".webp"}


def encode_image(image: np.ndarray, suffix: str, *, jpeg_quality: int = 92) -> bytes:
    """Encode an RGB uint8 image as JPEG, PNG or WebP, chosen by file suffix."""
    extension = ENCODINGS.get(suffix.lower())
    if extension is None:
        raise ValueError(f"cannot write {suffix!r} images; use one of {', '.join(ENCODINGS)}")
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if extension == ".jpg" else []
    ok, encoded = cv2.imencode(extension, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {extension} image")
    return encoded.tobytes()

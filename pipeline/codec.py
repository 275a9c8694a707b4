"""Turn uploaded bytes into an upright RGB photo, or a clear error.

Phones, scanners and editors hand us grayscale, RGBA, 16-bit, CMYK and EXIF-rotated files;
those are converted. Empty, non-image, truncated and oversized files are refused before
any large allocation happens.
"""

from __future__ import annotations

import io
import re
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.errors import EmptyImageError, ImageTooLargeError, NotAnImageError, TruncatedImageError

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def decode_image(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode ``data`` to an RGB uint8 array with the EXIF orientation applied."""
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

    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(max_pixels, size=(width, height))
    if width == 0 or height == 0:
        raise NotAnImageError("it has no pixels")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except Image.DecompressionBombError:
        raise ImageTooLargeError(max_pixels, size=(width, height)) from None
    except (OSError, SyntaxError):
        # Pillow reports a file that ends early, or whose data stops making sense, this way.
        raise TruncatedImageError() from None
    except ValueError as exc:
        raise NotAnImageError(str(exc)) from None

    image = ImageOps.exif_transpose(image)
    return _to_rgb8(image)


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

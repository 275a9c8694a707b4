"""QR codes for download links: PNG for screens, SVG for print, text for the terminal."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

# Medium error correction survives a smudged booth screen and a phone camera at an angle,
# while a ~70-character URL still fits a version-4 code that phones read from 1-2 m.
_ERROR_CORRECTION = ERROR_CORRECT_M
# The quiet zone the QR standard requires around the code; scanners fail on tighter crops.
_BORDER_MODULES = 4


def _code(url: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=_ERROR_CORRECTION, border=_BORDER_MODULES, box_size=10)
    code.add_data(url)
    code.make(fit=True)
    return code


def qr_png(url: str, *, module_px: int = 10) -> bytes:
    code = _code(url)
    code.box_size = module_px
    buffer = io.BytesIO()
    code.make_image().save(buffer, format="PNG")
    return buffer.getvalue()


def qr_svg(url: str) -> bytes:
    # One path rather than a rect per module: a third of the size, and no hairline gaps when scaled.
    return _code(url).make_image(image_factory=qrcode.image.svg.SvgPathImage).to_string(encoding="utf-8")


def qr_text(url: str) -> str:
    """The code drawn with half-block characters, two modules per line, for a terminal."""
    buffer = io.StringIO()
    _code(url).print_ascii(out=buffer, invert=True)
    return buffer.getvalue()

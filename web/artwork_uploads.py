"""What an uploaded artwork image must be beyond a readable image: big enough for a booth's screen.

The staff dashboard's upload (web/dashboard_artworks.py) and the REST API's (web/api/artworks.py)
both ask here before the catalogue decodes and stores the image.
"""

from __future__ import annotations

import asyncio

from kiosk.errors import InvalidEditError
from kiosk.settings import Settings
from pipeline.codec import read_size
from pipeline.errors import PipelineError


async def refuse_small_artwork(image_bytes: bytes, settings: Settings) -> None:
    """InvalidEditError when the image is under ``min_artwork_side_px`` on a side. Only its header
    is read; a file that cannot be read passes, for the catalogue to refuse with its reason."""
    try:
        # In a thread: a header is quick to read, but a crafted one is no reason to stall the loop.
        width, height = await asyncio.to_thread(read_size, image_bytes, max_pixels=settings.max_image_pixels)
    except PipelineError:
        return
    smallest = settings.min_artwork_side_px
    if min(width, height) < smallest:
        raise InvalidEditError(
            f"the artwork image is {width}x{height} pixels, too small for a booth's screen; "
            f"an artwork needs at least {smallest} pixels on each side"
        )

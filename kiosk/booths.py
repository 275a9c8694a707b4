"""The live side of the booths this server runs: their preview connections and status."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kiosk.artworks import load_artwork
from kiosk.catalogue import ArtworkCatalogue
from kiosk.settings import Settings
from pipeline.types import Artwork
from streaming.preview import PreviewModels
from streaming.sessions import KioskPeers

# A booth counts as online when it checked in within this many heartbeats (one may be late or lost).
ONLINE_HEARTBEATS = 3


# The booth's camera as its screen last reported it (web/static/kiosk.js, with each heartbeat):
# working, none found, refused by the browser, or unusable because the page is not HTTPS.
CAMERA_UNKNOWN = "unknown"
CAMERA_STATES = ("ok", "missing", "denied", "insecure", CAMERA_UNKNOWN)


@dataclass
class KioskStatus:
    last_seen: float | None = None  # monotonic
    capturing: bool = False
    captures: int = 0
    failures: int = 0
    camera: str = CAMERA_UNKNOWN  # one of CAMERA_STATES


@dataclass
class Booths:
    """The live side of every booth served here: peers, preview artworks, statuses."""

    settings: Settings
    catalogue: ArtworkCatalogue
    peers: KioskPeers
    executor: ThreadPoolExecutor
    preview_models: PreviewModels
    statuses: dict[str, KioskStatus] = field(default_factory=dict)
    _artworks: dict[tuple[str, datetime], Artwork] = field(default_factory=dict)

    def status(self, kiosk_id: str) -> KioskStatus:
        return self.statuses.setdefault(kiosk_id, KioskStatus())

    async def disconnect(self, kiosk_id: str) -> None:
        """Cut the booth's screen off at once (staff revoked it, or paired another screen): its live
        preview closes and it counts as offline until it checks in again."""
        await self.peers.close(kiosk_id)
        status = self.statuses.get(kiosk_id)
        if status is not None:
            status.last_seen = None

    def online(self, kiosk_id: str) -> bool:
        """Whether the booth is live: its preview is connected here, or it checked in with this
        server within ONLINE_HEARTBEATS heartbeats."""
        if self.peers.stats(kiosk_id) is not None:
            return True
        status = self.statuses.get(kiosk_id)
        if status is None or status.last_seen is None:
            return False
        return time.monotonic() - status.last_seen <= ONLINE_HEARTBEATS * self.settings.kiosk_heartbeat_seconds

    def live_stats(self, kiosk_id: str) -> dict[str, Any]:
        """What this server knows of the booth live, JSON-ready: zeros and nulls for one it has
        not seen since it started."""
        status = self.statuses.get(kiosk_id) or KioskStatus()
        preview = self.peers.stats(kiosk_id)
        seen = status.last_seen
        return {
            "kiosk": kiosk_id,
            "online": self.online(kiosk_id),
            "connected": preview is not None,
            "seconds_since_seen": round(time.monotonic() - seen, 1) if seen is not None else None,
            "capturing": status.capturing,
            "captures": status.captures,
            "failures": status.failures,
            "camera": status.camera,
            "preview": preview,
        }

    async def artwork(self, kiosk_id: str, artwork_id: str) -> Artwork:
        """The artwork if the kiosk offers it (ArtworkNotFoundError otherwise), decoded once per
        change (a painting decodes in tens of milliseconds)."""
        record = await self.catalogue.offered_at_kiosk(kiosk_id, artwork_id)
        key = (record.spec.id, record.updated_at)
        if key not in self._artworks:
            source = await self.catalogue.source_of(record)
            loaded = await asyncio.get_running_loop().run_in_executor(
                self.executor, lambda: load_artwork(source, max_pixels=self.settings.max_image_pixels)
            )
            if len(self._artworks) >= self.settings.artwork_cache_size:
                self._artworks.pop(next(iter(self._artworks)))
            self._artworks[key] = loaded
        return self._artworks[key]

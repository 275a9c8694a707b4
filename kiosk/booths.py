"""The live side of the booths this server runs: their preview connections and status, and every
booth's presence as the serve nodes sharing the database saw it (db/presence.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from db.presence import SharedBooths, forget_presence, note_presence, read_shared_booths
from db.service import SessionFactory
from kiosk.artworks import load_artwork
from kiosk.catalogue import ArtworkCatalogue
from kiosk.settings import Settings
from pipeline.types import Artwork
from streaming.preview import PreviewModels
from streaming.sessions import KioskPeers

log = logging.getLogger(__name__)

# A booth counts as online when it checked in within this many heartbeats (one may be late or lost).
ONLINE_HEARTBEATS = 3


# The booth's camera as its screen last reported it (web/static/kiosk.js, with each heartbeat):
# working, none found, refused by the browser, or unusable because the page is not HTTPS.
CAMERA_UNKNOWN = "unknown"
CAMERA_STATES = ("ok", "missing", "denied", "insecure", CAMERA_UNKNOWN)


@dataclass
class KioskStatus:
    """What this server knows of a booth from its own requests."""

    last_seen: float | None = None  # monotonic
    capturing: bool = False
    failures: int = 0
    camera: str = CAMERA_UNKNOWN  # one of CAMERA_STATES


@dataclass
class Booths:
    """The live side of every booth served here: peers, preview artworks, statuses; and every
    booth's presence on any node, once the app shares it (share_through)."""

    settings: Settings
    catalogue: ArtworkCatalogue
    peers: KioskPeers
    executor: ThreadPoolExecutor
    preview_models: PreviewModels
    statuses: dict[str, KioskStatus] = field(default_factory=dict)
    _artworks: dict[tuple[str, datetime], Artwork] = field(default_factory=dict)
    # The database the serve nodes share, and this node's name there (share_through).
    _sessions: SessionFactory | None = None
    _node: str = ""
    # Captures are counted in the photos table from this server's start ("since this server started").
    _started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    # Every booth's presence and capture count as last read (share_periodically), and when (monotonic).
    _shared: SharedBooths = field(default_factory=SharedBooths)
    _shared_read_at: float = 0.0
    # When this node last wrote each booth's presence (monotonic), to write at most every kiosk_presence_write_seconds.
    _presence_written: dict[str, float] = field(default_factory=dict)

    def share_through(self, sessions: SessionFactory, node: str) -> None:
        """Note booths' presence in the database that serve nodes share, as ``node``."""
        self._sessions, self._node = sessions, node

    async def note_alive(self, kiosk_id: str, *, camera: str | None = None) -> None:
        """The booth checked in here (with its camera's state, when it said): in memory at once, in
        the shared presence at most every kiosk_presence_write_seconds."""
        status = self.status(kiosk_id)
        status.last_seen = time.monotonic()
        if camera is not None:
            status.camera = camera
        written = self._presence_written.get(kiosk_id)
        if self._sessions is None or (
            written is not None and status.last_seen - written < self.settings.kiosk_presence_write_seconds
        ):
            return
        self._presence_written[kiosk_id] = status.last_seen  # before the write: one write at a time per booth
        stats = {"camera": status.camera, "connected": self.peers.stats(kiosk_id) is not None}
        try:
            await note_presence(self._sessions, kiosk_id, node=self._node, stats=stats)
        except BaseException:
            self._presence_written.pop(kiosk_id, None)  # the next check-in tries again
            raise

    async def refresh_shared(self) -> None:
        """Read every booth's presence and capture count from the shared database."""
        if self._sessions is None:
            return
        self._shared = await read_shared_booths(self._sessions, captures_since=self._started_at)
        self._shared_read_at = time.monotonic()

    async def share_periodically(self) -> None:
        """refresh_shared every kiosk_presence_read_seconds, until cancelled."""
        while True:
            try:
                await self.refresh_shared()
            except Exception:
                # A database blip must not stop this node showing other nodes' booths for good.
                log.exception("could not read the booths' presence; retrying")
            await asyncio.sleep(self.settings.kiosk_presence_read_seconds)

    def status(self, kiosk_id: str) -> KioskStatus:
        return self.statuses.setdefault(kiosk_id, KioskStatus())

    async def disconnect(self, kiosk_id: str) -> None:
        """Cut the booth's screen off at once (staff revoked it, or paired another screen): its live
        preview closes and it counts as offline until it checks in again."""
        await self.peers.close(kiosk_id)
        status = self.statuses.get(kiosk_id)
        if status is not None:
            status.last_seen = None
        self._shared.seen.pop(kiosk_id, None)
        self._presence_written.pop(kiosk_id, None)
        if self._sessions is not None:
            await forget_presence(self._sessions, kiosk_id)  # offline on every node

    def _last_seen(self, kiosk_id: str) -> tuple[float, str, str] | None:
        """(seconds ago, camera, node) of the booth's latest check-in, here or on any node; None if never."""
        now = time.monotonic()
        latest = None
        shared = self._shared.seen.get(kiosk_id)
        if shared is not None:
            camera = shared.stats.get("camera", CAMERA_UNKNOWN)
            latest = (shared.seconds_ago + now - self._shared_read_at, camera, shared.node)
        status = self.statuses.get(kiosk_id)
        if status is not None and status.last_seen is not None and (latest is None or now - status.last_seen <= latest[0]):
            latest = (now - status.last_seen, status.camera, self._node)
        return latest

    def online(self, kiosk_id: str) -> bool:
        """Whether the booth is live: its preview is connected here, or it checked in with any node
        within ONLINE_HEARTBEATS heartbeats."""
        if self.peers.stats(kiosk_id) is not None:
            return True
        seen = self._last_seen(kiosk_id)
        return seen is not None and seen[0] <= ONLINE_HEARTBEATS * self.settings.kiosk_heartbeat_seconds

    def live_stats(self, kiosk_id: str) -> dict[str, Any]:
        """What the serve nodes know of the booth live, JSON-ready: zeros and nulls for one not seen
        since this server started. Captures are the booth's photos since then, from any node;
        failures and the preview are this server's."""
        status = self.statuses.get(kiosk_id) or KioskStatus()
        preview = self.peers.stats(kiosk_id)
        seen = self._last_seen(kiosk_id)
        return {
            "kiosk": kiosk_id,
            "online": self.online(kiosk_id),
            "connected": preview is not None,
            "seconds_since_seen": round(seen[0], 1) if seen is not None else None,
            # The node the booth checked in with last (its heartbeats go to one node at a time).
            "node": seen[2] if seen is not None else None,
            "capturing": status.capturing,
            "captures": self._shared.captures.get(kiosk_id, 0),
            "failures": status.failures,
            "camera": seen[1] if seen is not None else CAMERA_UNKNOWN,
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

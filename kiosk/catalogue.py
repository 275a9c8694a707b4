"""The artworks the service offers, as the database holds them.

Artworks that come with files (the artworks folder, the demos) are imported at start;
staff's choices (enabled, order) live only in the database, so the database is where every
lookup goes.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

from db import service
from db.service import ArtworkRecord, ArtworkSyncReport
from kiosk.artworks import ArtworkLibrary, ArtworkSource
from kiosk.errors import ArtworkNotFoundError
from kiosk.storage import Storage
from pipeline.types import ArtworkSpec


class ArtworkCatalogue:
    def __init__(self, storage: Storage, library: ArtworkLibrary) -> None:
        self._storage = storage
        self._library = library

    async def sync(self) -> ArtworkSyncReport:
        """Import the folder's artworks and the demos (demo images are painted on first use)."""
        specs, keys = await asyncio.to_thread(self._library_contents)
        return await service.sync_artworks(self._storage.sessions, specs, keys, now=datetime.now(timezone.utc))

    def _library_contents(self) -> tuple[list[ArtworkSpec], dict[str, str]]:
        specs = self._library.specs()
        return specs, {spec.id: self._library.image_key(spec.id) for spec in specs}

    async def records(self, *, include_hidden: bool = False) -> list[ArtworkRecord]:
        return await service.list_artworks(self._storage.sessions, include_hidden=include_hidden)

    async def offered(self, artwork_id: str) -> ArtworkRecord:
        """The artwork if visitors may use it (enabled, and its files present); ArtworkNotFoundError otherwise."""
        record = await service.get_artwork(self._storage.sessions, artwork_id)
        if record is None or not (record.enabled and record.available):
            offered = ", ".join(r.spec.id for r in await self.records())
            raise ArtworkNotFoundError(f"no artwork {artwork_id!r}; the artworks on offer are: {offered}")
        return record

    async def source(self, artwork_id: str) -> ArtworkSource:
        return await self.source_of(await self.offered(artwork_id))

    async def source_of(self, record: ArtworkRecord) -> ArtworkSource:
        # A demo's image is painted on its first use: file work, off the event loop.
        return ArtworkSource(spec=record.spec, image_path=await asyncio.to_thread(self.image_path, record))

    def image_path(self, record: ArtworkRecord) -> Path:
        path = self._library.image_path(record.image_key)
        if path is None:
            path = self._storage.store.local_path(record.image_key)
        if path is None:
            raise ArtworkNotFoundError(f"artwork {record.spec.id!r}: its image is in a store without local files")
        return path

"""The service's storage, opened once: database (migrated), photo store, and the one call that
saves a composition and hands back its download link. The CLI, the web upload, the kiosk and
the API all save through `Storage.save`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from db import capture_jobs, overrides, service
from db.engine import create_engine, create_session_factory, database_url, unavailable
from db.migrate import upgrade
from db.notify import SETTINGS_CHANNEL
from db.service import RetentionReport, SessionFactory
from db.store import LocalPhotoStore, PhotoStore
from kiosk.errors import StorageFailedError
from kiosk.settings import Settings, SettingsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedDownload:
    photo_id: str
    # The secret part of the link; it exists in plain text only here, the database keeps its hash.
    token: str
    url: str
    expires_at: datetime
    # (width, height) of the visitor's photo as it arrived, upright (db.service.PhotoInfo.capture_size).
    capture_size: tuple[int, int] | None = None


class Storage:
    def __init__(self, settings: Settings, engine: AsyncEngine, store: PhotoStore) -> None:
        # What the defaults, the settings file and the environment say...
        self.loaded_settings = settings
        # ...and the settings in effect: those with staff's dashboard changes on top. Whatever must
        # follow a change without a restart reads this attribute each time it needs a value.
        self.settings = settings
        # One change at a time, so two staff saving at once cannot leave one's change out of effect.
        self._settings_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self.engine = engine
        self.sessions: SessionFactory = create_session_factory(engine)
        self.store = store
        # A write per download would cost more than sending the photo; counts are batched instead.
        self._download_counts: collections.Counter[int] = collections.Counter()

    @classmethod
    async def open(cls, settings: Settings) -> Storage:
        """Bring the database schema up to date and connect to it and to the photo store;
        DatabaseUnavailableError or PhotoStoreUnavailableError says why not."""
        url = database_url(settings.data_dir, settings.database_url)
        await upgrade(url)
        storage = cls(settings, create_engine(url), await _open_photo_store(settings))
        try:
            await storage.reload_settings()
        except SQLAlchemyError as exc:
            await storage.close()
            raise unavailable(storage.engine.url, exc) from exc
        return storage

    @property
    def shares_settings(self) -> bool:
        """Whether other serve nodes may share this database (PostgreSQL): settings changes are then
        announced to them (db/notify.py). SQLite is one machine's file: one node."""
        return self.engine.dialect.name == "postgresql"

    @property
    def settings_channel(self) -> str | None:
        """Where a change of what the dashboard sets (settings, the museum's logo) is announced to the
        other nodes with NOTIFY; None with SQLite, which no other node shares."""
        return SETTINGS_CHANNEL if self.shares_settings else None

    async def reload_settings(self) -> None:
        """Put the stored dashboard values in effect: at start, and whenever any node changed them."""
        async with self._settings_lock:
            settings = self.loaded_settings
            for name, value in sorted((await overrides.load_overrides(self.sessions)).items()):
                try:
                    settings = settings.with_overrides({name: value})
                except SettingsError as exc:
                    # A value an older version accepted must not keep the service from starting.
                    log.warning("ignoring the dashboard's value of %s: %s", name, exc)
            self.settings = settings

    async def change_settings(self, changes: Mapping[str, object], *, resets: Iterable[str] = (), actor: str) -> Settings:
        """Apply staff's ``changes`` (field name -> value, as text or JSON) and ``resets`` (back to
        the file or environment value) and store them; they take effect at once. SettingsError,
        and nothing changed, when a value is refused."""
        async with self._settings_lock:
            stored = await overrides.load_overrides(self.sessions)
            kept = {name: value for name, value in stored.items() if name not in set(resets) and name not in changes}
            settings = self.loaded_settings.with_overrides(kept | dict(changes))
            json_values = {name: _json_value(getattr(settings, name)) for name in changes}
            await overrides.save_overrides(
                self.sessions,
                changes=json_values,
                resets=resets,
                actor=actor,
                now=datetime.now(timezone.utc),
                notify=self.settings_channel,
            )
            self.settings = settings
        return settings

    async def close(self) -> None:
        try:
            await self.store.close()
        finally:
            await self.engine.dispose()

    def warn_if_unreachable_by_phones(self) -> None:
        if not self.settings.public_url_reachable_by_phones:
            log.warning(
                "download links point to %s, which visitors' phones cannot open; "
                "set ARTBOOTH_PUBLIC_URL to this machine's LAN address",
                self.settings.resolved_public_url,
            )

    def download_url(self, token: str) -> str:
        return f"{self.settings.resolved_public_url}/p/{token}"

    async def save(
        self,
        result_jpeg: bytes,
        report: Mapping[str, Any],
        *,
        artwork_id: str,
        kiosk_id: str | None = None,
        raw_photo: bytes | None = None,
        language: str | None = None,
    ) -> SavedDownload:
        """Store the composition (and the visitor's photo when keep_raw_photos is on) with a new link,
        whose page opens in ``language`` (the booth visitor's) when given.

        On failure nothing is kept (no row without its files, no files without a row) and
        StorageFailedError says why.
        """
        try:
            saved = await service.save_composition(
                self.sessions,
                self.store,
                result_jpeg=result_jpeg,
                raw_photo=raw_photo,
                keep_raw=self.settings.keep_raw_photos,
                artwork_id=artwork_id,
                kiosk_id=kiosk_id,
                report=report,
                link_ttl=timedelta(hours=self.settings.download_link_hours),
                now=datetime.now(timezone.utc),
                max_pixels=self.settings.max_image_pixels,
                language=language,
            )
        except OSError as exc:
            raise StorageFailedError(f"could not store the photo ({exc.strerror or exc}); nothing was saved") from exc
        except SQLAlchemyError as exc:
            reason = unavailable(self.engine.url, exc)
            raise StorageFailedError(f"could not record the photo ({reason}); nothing was saved") from exc
        return SavedDownload(
            photo_id=saved.photo.id,
            token=saved.token,
            url=self.download_url(saved.token),
            expires_at=saved.link.expires_at,
            capture_size=saved.photo.capture_size,
        )

    def count_download(self, link_id: int) -> None:
        """Note a download; counts reach the database in batches (flush_download_counts)."""
        self._download_counts[link_id] += 1

    async def flush_download_counts(self) -> None:
        """Write the downloads counted so far; when it returns they are in the database, even if the
        periodic flush had taken them a moment before (it is waited for)."""
        async with self._flush_lock:
            counts, self._download_counts = self._download_counts, collections.Counter()
            try:
                await service.record_downloads(self.sessions, counts)
            except Exception:
                self._download_counts.update(counts)  # kept for the next flush
                raise

    async def flush_download_counts_periodically(self) -> None:
        """Every download_count_flush_seconds until cancelled, then once more, so no count is lost at shutdown."""
        try:
            while True:
                await asyncio.sleep(self.settings.download_count_flush_seconds)
                try:
                    await self.flush_download_counts()
                except Exception:
                    log.exception("could not record download counts; retrying")
        finally:
            await self.flush_download_counts()

    async def run_retention(self) -> RetentionReport:
        days = self.settings.photo_retention_days
        now = datetime.now(timezone.utc)
        await capture_jobs.delete_jobs_queued_before(self.sessions, now - capture_jobs.JOBS_KEPT)
        return await service.run_retention(
            self.sessions,
            self.store,
            now=now,
            photo_days=days if days > 0 else None,
            link_grace=timedelta(days=self.settings.expired_link_grace_days),
        )

    async def retain_periodically(self) -> None:
        """Run retention now and then every retention_interval_minutes, until cancelled."""
        while True:
            try:
                await self.run_retention()
            except Exception:
                # A database blip must not end retention for the life of the service.
                log.exception("retention run failed; retrying in %d minutes", self.settings.retention_interval_minutes)
            await asyncio.sleep(self.settings.retention_interval_minutes * 60)


async def _open_photo_store(settings: Settings) -> PhotoStore:
    if not settings.photo_store:
        return LocalPhotoStore(settings.resolved_photos_dir)
    # Imported only here: botocore's import costs a single-machine service (and every CLI command) time for nothing.
    from db.s3_store import S3PhotoStore

    return await S3PhotoStore.open(settings)


def _json_value(value: object) -> object:
    return str(value) if isinstance(value, Path) else value

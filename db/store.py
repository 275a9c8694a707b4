"""Where photo files live: a small interface, and a local-disk implementation of it.

Keys are made by the store, never taken from a request, so no visitor- or staff-supplied name
ever becomes part of a path. The interface has nothing local in it except the optional
``local_path`` fast path, so an S3-compatible store can implement it too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Protocol

from kiosk.errors import ArtBoothError, ExitCode
from kiosk.files import fsync_directory, write_atomically

log = logging.getLogger(__name__)

SUFFIXES = (".jpg", ".png", ".webp")
_KEY_PATTERN = re.compile(r"[0-9a-f]{32}\.(?:jpg|png|webp)")
# What kiosk.files.write_atomically writes before renaming it to the key: ``.KEY.RANDOM.tmp``.
_TEMPORARY_PATTERN = re.compile(r"\.[0-9a-f]{32}\.(?:jpg|png|webp)\.\w+\.tmp")


class StoredFileMissingError(LookupError):
    """No file under this key (never written, or deleted)."""


class PhotoStoreUnavailableError(ArtBoothError, ConnectionError):
    """The store cannot be used now (a remote store down or refusing us): not "no such file".

    An OSError, so what already copes with a failing disk copes with it too (a save answers
    "nothing was saved", a delete is left for retention); the web middleware answers 503.
    """

    exit_code = ExitCode.PHOTO_STORE_UNAVAILABLE


def new_key(suffix: str) -> str:
    """A fresh random key: no visitor- or staff-supplied name ever becomes part of one."""
    return uuid.uuid4().hex + _checked_suffix(suffix)


def derived_key(name: str, role: str, suffix: str = ".jpg") -> str:
    """The key of ``name``'s ``role`` file (e.g. a queued capture's "still" or "result"): the same
    every time, so writing it again replaces it; of the same form as new_key's, so nothing else
    (the orphan sweep, the checks) needs to tell them apart."""
    return hashlib.sha256(f"{role}:{name}".encode()).hexdigest()[:32] + _checked_suffix(suffix)


def _checked_suffix(suffix: str) -> str:
    if suffix not in SUFFIXES:
        raise ValueError(f"suffix must be one of {', '.join(SUFFIXES)}, not {suffix!r}")
    return suffix


def is_key(name: str) -> bool:
    return _KEY_PATTERN.fullmatch(name) is not None


def checked_key(key: str) -> str:
    """``key``, refused unless new_key could have made it: a corrupted row must not name anything else."""
    if not is_key(key):
        raise ValueError(f"not a photo store key: {key!r}")
    return key


class PhotoStore(Protocol):
    async def put(self, data: bytes, *, suffix: str = ".jpg") -> str:
        """Store ``data`` durably under a new random key, and return the key."""

    async def put_at(self, key: str, data: bytes) -> None:
        """Store ``data`` durably under ``key`` (one derived_key made), replacing what is there: a job
        run again writes the same keys instead of leaving the first run's files behind."""

    async def get(self, key: str) -> bytes:
        """The file's bytes; StoredFileMissingError when there is none."""

    async def delete(self, key: str) -> bool:
        """Remove the file; False when there was none (deleting twice is not an error)."""

    async def exists(self, key: str) -> bool: ...

    async def keys_older_than(self, cutoff: datetime) -> list[str]:
        """Every key written before ``cutoff``: the candidates for the orphaned-file sweep."""

    async def delete_unfinished_writes(self, cutoff: datetime) -> int:
        """Remove what writes begun before ``cutoff`` and never finished left behind (a killed
        service's temporary files, each possibly a whole visitor photo); how many were removed.
        Those that cannot be removed now are left for the next call."""

    def local_path(self, key: str) -> Path | None:
        """A file path the web server may stream from (sendfile), or None for remote stores."""

    async def close(self) -> None:
        """Release connections; called once, when the service stops."""


class LocalPhotoStore:
    """Files under ``root``, in two levels of shard folders (``ab/cd/abcd….jpg``) to keep folders small."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    async def put(self, data: bytes, *, suffix: str = ".jpg") -> str:
        key = new_key(suffix)
        await asyncio.to_thread(self._write, self._path(key), data)
        return key

    async def put_at(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            raise StoredFileMissingError(key) from None

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self._delete, self._path(key))

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def keys_older_than(self, cutoff: datetime) -> list[str]:
        return await asyncio.to_thread(self._keys_older_than, cutoff.timestamp())

    async def delete_unfinished_writes(self, cutoff: datetime) -> int:
        return await asyncio.to_thread(self._delete_unfinished_writes, cutoff.timestamp())

    def local_path(self, key: str) -> Path:
        return self._path(key)

    async def close(self) -> None:
        pass  # nothing held open between calls

    def _path(self, key: str) -> Path:
        # Keys come back from the database; checking them keeps a corrupted row from naming any other file.
        checked_key(key)
        return self.root / key[:2] / key[2:4] / key

    def _write(self, path: Path, data: bytes) -> None:
        self._make_folders(path.parent)
        write_atomically(path, data)  # fsyncs the folder too: the rename itself is durable

    def _make_folders(self, folder: Path) -> None:
        if folder.is_dir():
            return
        self._make_folders(folder.parent)
        try:
            folder.mkdir()
        except FileExistsError:
            return  # a concurrent put made it
        fsync_directory(folder.parent)

    @staticmethod
    def _delete(path: Path) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_directory(path.parent)
        return True

    def _keys_older_than(self, cutoff: float) -> list[str]:
        keys = []
        for path in self.root.glob("??/??/*"):
            if not is_key(path.name):
                continue  # an unfinished write's temporary file, or something that is not ours
            try:
                if path.stat().st_mtime < cutoff:
                    keys.append(path.name)
            except FileNotFoundError:
                continue  # deleted while we looked
        return keys

    def _delete_unfinished_writes(self, cutoff: float) -> int:
        deleted = 0
        for path in self.root.glob("??/??/.*.tmp"):
            if not _TEMPORARY_PATTERN.fullmatch(path.name):
                continue
            try:
                # Only old ones: a young one may be a write in progress, about to be renamed to its key.
                if path.stat().st_mtime >= cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue  # renamed or removed while we looked
            except OSError as exc:
                log.warning("cannot remove the unfinished write %s (%s); retried at the next sweep", path, exc.strerror)
                continue
            deleted += 1
        return deleted

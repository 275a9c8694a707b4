"""The local photo store: store-made keys, sharded folders, atomic writes, no path from outside."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from db.store import LocalPhotoStore, StoredFileMissingError


async def test_put_get_exists_delete(tmp_path):
    store = LocalPhotoStore(tmp_path / "photos")
    key = await store.put(b"jpeg bytes")
    assert await store.exists(key)
    assert await store.get(key) == b"jpeg bytes"
    assert await store.delete(key) is True
    assert not await store.exists(key)
    assert await store.delete(key) is False
    with pytest.raises(StoredFileMissingError):
        await store.get(key)


async def test_keys_are_random_and_files_sharded_without_temporary_leftovers(tmp_path):
    root = tmp_path / "photos"
    store = LocalPhotoStore(root)
    keys = [await store.put(b"x", suffix=".png") for _ in range(3)]
    assert len(set(keys)) == 3
    for key in keys:
        assert key.endswith(".png") and len(key) == 36
        assert store.local_path(key) == root / key[:2] / key[2:4] / key
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == sorted(keys)


@pytest.mark.parametrize(
    "key", ["../../etc/passwd", "photo.jpg", "0" * 32 + ".exe", "0" * 32 + ".jpg\n", "0" * 32 + ".jpg/..", ""]
)
async def test_anything_but_a_store_key_is_refused(tmp_path, key):
    store = LocalPhotoStore(tmp_path / "photos")
    with pytest.raises(ValueError):
        await store.get(key)
    with pytest.raises(ValueError):
        await store.delete(key)


async def test_unknown_suffixes_are_refused(tmp_path):
    with pytest.raises(ValueError):
        await LocalPhotoStore(tmp_path).put(b"x", suffix=".html")


async def test_keys_older_than_lists_only_old_store_files(tmp_path):
    store = LocalPhotoStore(tmp_path / "photos")
    old, new = await store.put(b"old"), await store.put(b"new")
    two_hours_ago = time.time() - 7200
    os.utime(store.local_path(old), (two_hours_ago, two_hours_ago))
    leftover = store.local_path(new).with_name(f".{new}.abc.tmp")  # what a crash mid-write leaves
    leftover.write_bytes(b"half")
    os.utime(leftover, (two_hours_ago, two_hours_ago))
    assert await store.keys_older_than(datetime.now(timezone.utc) - timedelta(hours=1)) == [old]

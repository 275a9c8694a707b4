"""Photos in an S3-compatible object store (Amazon S3, SeaweedFS, MinIO...), behind db.store.PhotoStore.

Several serve nodes share one bucket, so a visitor link made on one node downloads through
another. Downloads still go through the app (web/visitor.py), so the /p/ privacy headers apply
and no bucket is ever public. Keys are made and checked as LocalPhotoStore's are; objects live
under the settings' prefix, and nothing outside it is ever listed or deleted.

A store that cannot be reached, or that refuses our credentials, raises PhotoStoreUnavailableError
(503 for a request, exit code 17 at start); a missing object raises StoredFileMissingError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from db.store import PhotoStoreUnavailableError, StoredFileMissingError, checked_key, is_key, new_key
from kiosk.settings import Settings

log = logging.getLogger(__name__)

_CONTENT_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
# What S3 answers for "no such object" (HEAD has no body, so only its status: "404").
_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
# A uuid4 key already taken is as good as impossible; should it happen, a new key is drawn.
_KEY_ATTEMPTS = 3
# How the errors of the transport show: botocore's own, aiohttp's below it, and a read timing out.
_TRANSPORT_ERRORS = (BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


class S3PhotoStore:
    """Objects ``PREFIX/KEY`` in one bucket, through one aiobotocore client for the process."""

    def __init__(self, client: Any, *, bucket: str, prefix: str, where: str, exit_stack: contextlib.AsyncExitStack) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        # For messages: the endpoint and bucket, never the credentials.
        self.where = where
        self._exit_stack = exit_stack

    @classmethod
    async def open(cls, settings: Settings) -> S3PhotoStore:
        """Connect, and make the bucket when it does not exist; PhotoStoreUnavailableError says why not."""
        config = Config(
            connect_timeout=settings.s3_timeout_seconds,
            read_timeout=settings.s3_timeout_seconds,
            # Standard mode retries throttling and transient errors (a timeout too) with a random backoff
            # of up to 1 s, then 2 s: three tries in all, so a store that does not answer is answered
            # 503 after at most 3 timeouts and 3 s.
            retries={"mode": "standard", "total_max_attempts": 3},
            # Path-style addressing (endpoint/bucket/key): a self-hosted store on an address has no
            # bucket sub-domains; Amazon S3 itself takes botocore's choice.
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
        )
        credentials = (
            {"aws_access_key_id": settings.s3_access_key_id, "aws_secret_access_key": settings.s3_secret_access_key}
            if settings.s3_access_key_id
            else {}
        )
        where = f"{settings.photo_store} at {settings.s3_endpoint_url or 'Amazon S3'}"
        exit_stack = contextlib.AsyncExitStack()
        client = await exit_stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=settings.s3_endpoint_url or None,
                region_name=settings.s3_region,
                config=config,
                **credentials,
            )
        )
        store = cls(client, bucket=settings.photo_store_bucket, prefix=settings.photo_store_prefix, where=where, exit_stack=exit_stack)
        try:
            await store._make_bucket_unless_there()
        except BaseException:
            await store.close()
            raise
        return store

    async def _make_bucket_unless_there(self) -> None:
        try:
            await self._call("head_bucket")
            return
        except StoredFileMissingError:
            pass
        log.info("photo store: making the bucket %s", self.bucket)
        region = self._client.meta.region_name
        # Amazon S3 makes a bucket in us-east-1 unless told otherwise (and refuses being told us-east-1).
        placement = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        await self._call("create_bucket", **placement)

    async def close(self) -> None:
        await self._exit_stack.aclose()

    async def put(self, data: bytes, *, suffix: str = ".jpg") -> str:
        for _ in range(_KEY_ATTEMPTS):
            key = new_key(suffix)
            try:
                # If-None-Match: never replace an object already there (S3 and SeaweedFS answer 412).
                await self._call(
                    "put_object", Key=self._object(key), Body=data, ContentType=_CONTENT_TYPES[suffix], IfNoneMatch="*"
                )
            except _KeyTakenError:
                continue
            return key
        raise PhotoStoreUnavailableError(f"photo store {self.where}: every new key was taken; is the prefix shared?")

    async def put_at(self, key: str, data: bytes) -> None:
        # A whole-object put is atomic in S3: a reader sees the old object or the new one.
        suffix = "." + key.rpartition(".")[2]
        await self._call("put_object", Key=self._object(key), Body=data, ContentType=_CONTENT_TYPES[suffix])

    async def get(self, key: str) -> bytes:
        response = await self._call("get_object", Key=self._object(key))
        try:
            async with response["Body"] as body:
                return await body.read()
        except _TRANSPORT_ERRORS as exc:
            raise self._unreachable("get_object", exc) from exc

    async def delete(self, key: str) -> bool:
        # S3's delete answers the same whether or not the object was there: look first.
        if not await self.exists(key):
            return False
        await self._call("delete_object", Key=self._object(key))
        return True

    async def exists(self, key: str) -> bool:
        try:
            await self._call("head_object", Key=self._object(key))
        except StoredFileMissingError:
            return False
        return True

    async def keys_older_than(self, cutoff: datetime) -> list[str]:
        keys = []
        async for item in self._listing("list_objects_v2", "Contents"):
            name = item["Key"].removeprefix(self.prefix)
            # Only our keys directly under the prefix: another application's objects are never touched.
            if is_key(name) and item["LastModified"] < cutoff:
                keys.append(name)
        return keys

    async def delete_unfinished_writes(self, cutoff: datetime) -> int:
        # A single put is atomic and leaves nothing when cut short; only multipart uploads begun and
        # never completed leave parts behind (kept, and billed, until aborted).
        aborted = 0
        async for upload in self._listing("list_multipart_uploads", "Uploads"):
            if not is_key(upload["Key"].removeprefix(self.prefix)) or upload["Initiated"] >= cutoff:
                continue
            try:
                await self._call("abort_multipart_upload", Key=upload["Key"], UploadId=upload["UploadId"])
            except StoredFileMissingError:
                continue  # completed or aborted while we looked
            aborted += 1
        return aborted

    def local_path(self, key: str) -> None:
        return None

    def _object(self, key: str) -> str:
        return self.prefix + checked_key(key)

    async def _listing(self, operation: str, items: str) -> AsyncIterator[dict[str, Any]]:
        pages = self._client.get_paginator(operation).paginate(Bucket=self.bucket, Prefix=self.prefix)
        try:
            async for page in pages:
                for item in page.get(items, ()):
                    yield item
        except ClientError as exc:
            raise self._refused(operation, exc) from exc
        except _TRANSPORT_ERRORS as exc:
            raise self._unreachable(operation, exc) from exc

    async def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            return await getattr(self._client, operation)(Bucket=self.bucket, **params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _NOT_FOUND or (code == "NoSuchBucket" and operation == "head_bucket"):
                raise StoredFileMissingError(params.get("Key", self.bucket)) from None
            if code == "NoSuchUpload":
                raise StoredFileMissingError(params["Key"]) from None
            if code == "PreconditionFailed" and operation == "put_object":
                raise _KeyTakenError(params["Key"]) from None
            if code == "BucketAlreadyOwnedByYou" and operation == "create_bucket":
                return {}  # another node starting at the same moment made it first
            raise self._refused(operation, exc) from exc
        except NoCredentialsError:
            raise PhotoStoreUnavailableError(
                f"photo store {self.where}: no credentials; set s3_access_key_id and s3_secret_access_key "
                "(or the AWS_* variables)"
            ) from None
        except _TRANSPORT_ERRORS as exc:
            raise self._unreachable(operation, exc) from exc

    def _refused(self, operation: str, exc: ClientError) -> PhotoStoreUnavailableError:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return PhotoStoreUnavailableError(
            f"photo store {self.where} refused {operation}: {error.get('Code') or status} "
            f"({error.get('Message') or 'no message'})"
        )

    def _unreachable(self, operation: str, exc: BaseException) -> PhotoStoreUnavailableError:
        return PhotoStoreUnavailableError(f"cannot reach the photo store {self.where} ({operation}): {str(exc) or type(exc).__name__}")


class _KeyTakenError(Exception):
    """The conditional put found an object under the new key."""

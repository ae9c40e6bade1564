"""Objects in S3: streamed uploads (multipart when large) and presigned downloads.

boto3 is imported where it is first used, not at module level: it costs about
100 ms of cold start, which functions that never touch S3 must not pay (and
the Lambda runtime ships it, so it is no dependency of the layer). One client
per container and endpoint, created on first use.

boto3 blocks. Every S3 call runs in a worker thread (``asyncio.to_thread``),
so the container's one event loop keeps serving while bytes travel.

An upload consumes an async iterator of byte chunks and holds at most one part
in memory: a body that stays under ``part_bytes`` goes up with one
``PutObject``; a larger one becomes a multipart upload whose parts are sent
as they fill, and which is aborted if anything fails, so no orphaned parts
are left to pay for (the bucket's lifecycle rule is the second line).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from storefront.settings import Settings

__all__ = ["ObjectStore", "ObjectStoreError", "S3ObjectStore", "StoredObject", "s3_client"]


class ObjectStoreError(Exception):
    """The store refused or could not be reached; ``reason`` says what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    parts: int  # 1 for a single PutObject


class ObjectStore(Protocol):
    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        filename: str,
    ) -> StoredObject: ...

    async def download_url(self, key: str, expires_in: int) -> str: ...

    async def delete(self, key: str) -> None: ...


_clients: dict[tuple[str | None, str | None], Any] = {}
_clients_lock = threading.Lock()


def s3_client(endpoint_url: str | None, region: str | None) -> Any:
    """The container's S3 client for one endpoint, made once.

    Clients are thread-safe; making one is not (boto3's default session), so
    the first calls, from worker threads, take a lock.
    """
    with _clients_lock:
        client = _clients.get((endpoint_url, region))
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                signature_version="s3v4",
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=5,
                read_timeout=30,
                # A local endpoint (moto's server on 127.0.0.1) has no bucket subdomains.
                s3={"addressing_style": "path"} if endpoint_url else {},
            )
            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )
            _clients[(endpoint_url, region)] = client
        return client


class S3ObjectStore:
    def __init__(
        self,
        bucket: str | None,
        *,
        part_bytes: int,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.part_bytes = part_bytes
        self._endpoint_url = endpoint_url
        self._region = region

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ObjectStore:
        return cls(
            settings.reports_bucket,
            part_bytes=settings.report_part_bytes,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.aws_region,
        )

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        filename: str,
    ) -> StoredObject:
        bucket = self._bucket()
        attributes = {
            "ContentType": content_type,
            "ContentDisposition": f'attachment; filename="{filename}"',
        }
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []

        async def send_part() -> None:
            nonlocal upload_id
            if upload_id is None:
                started = await self._call(
                    "create_multipart_upload", Bucket=bucket, Key=key, **attributes
                )
                upload_id = str(started["UploadId"])
            number = len(parts) + 1
            sent = await self._call(
                "upload_part",
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=bytes(buffer),
            )
            parts.append({"PartNumber": number, "ETag": sent["ETag"]})
            buffer.clear()

        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                if len(buffer) >= self.part_bytes:
                    await send_part()
            if upload_id is None:
                await self._call(
                    "put_object", Bucket=bucket, Key=key, Body=bytes(buffer), **attributes
                )
                return StoredObject(key, size, parts=1)
            if buffer:
                await send_part()
            await self._call(
                "complete_multipart_upload",
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            if upload_id is not None:
                # Shielded: a cancelled build (its timeout) must still abort.
                await asyncio.shield(self._abort(bucket, key, upload_id))
            raise
        return StoredObject(key, size, parts=len(parts))

    async def download_url(self, key: str, expires_in: int) -> str:
        bucket = self._bucket()
        client = await asyncio.to_thread(self._client)
        # Signing is local computation: no request leaves the container.
        url: str = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url

    async def delete(self, key: str) -> None:
        await self._call("delete_object", Bucket=self._bucket(), Key=key)

    async def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        # Should this fail too, the lifecycle rule removes the parts after a day.
        with contextlib.suppress(ObjectStoreError):
            await self._call("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)

    def _bucket(self) -> str:
        if not self.bucket:
            raise ObjectStoreError("REPORTS_BUCKET is not set: configure the reports bucket")
        return self.bucket

    def _client(self) -> Any:
        return s3_client(self._endpoint_url, self._region)

    async def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            method: Callable[..., dict[str, Any]] = getattr(self._client(), operation)
            return method(**arguments)

        try:
            return await asyncio.to_thread(call)
        except Exception as error:
            if not type(error).__module__.startswith(("botocore", "urllib3")):
                raise  # a bug, not S3's answer
            raise ObjectStoreError(_reason(error, self.bucket or "")) from error


def _reason(error: Exception, bucket: str) -> str:
    """What a person can do about an S3 failure, in one sentence."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", "Unknown"))
        message = str(response.get("Error", {}).get("Message", ""))
        if code == "NoSuchBucket":
            return f"the reports bucket {bucket!r} does not exist: check REPORTS_BUCKET"
        if code in {"AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId"}:
            return (
                f"S3 denied access to bucket {bucket!r} ({code}): check the function's "
                "S3 policy and credentials"
            )
        return f"S3 refused the request ({code}: {message}); request the report again"
    name = type(error).__name__
    if name in {"NoCredentialsError", "PartialCredentialsError"}:
        return "no AWS credentials to reach S3: check the function's role"
    return f"S3 could not be reached ({name}: {error}); request the report again"

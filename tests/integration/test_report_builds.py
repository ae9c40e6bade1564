"""Building reports: large ones stream up in parts; slow ones end FAILED."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

import httpx
from sqlalchemy import text

from storefront.adapters.object_store import ObjectStore, S3ObjectStore, StoredObject
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.embedded import EmbeddedS3
from tests.integration.reports import (
    head_object,
    no_reports,
    reports_app,
    reports_client,
    reports_resources,
    run_worker,
)

__all__ = ["no_reports", "reports_app", "reports_client", "reports_resources"]  # fixtures

PART = 5 * 1024 * 1024  # the smallest part S3 takes
PRODUCTS = 24_000  # ~6 MB of CSV: two parts


class RecordingStore:
    """The real store, noting the size of every chunk it is handed."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.chunks: list[int] = []

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, filename: str
    ) -> StoredObject:
        async def noted() -> AsyncIterable[bytes]:
            async for chunk in chunks:
                self.chunks.append(len(chunk))
                yield chunk

        return await self.store.put_stream(
            key, noted(), content_type=content_type, filename=filename
        )

    async def download_url(self, key: str, expires_in: int) -> str:
        return await self.store.download_url(key, expires_in)

    async def delete(self, key: str) -> None:
        await self.store.delete(key)


class StalledStore(RecordingStore):
    """A store whose upload never ends: S3 hanging on a dead connection."""

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, filename: str
    ) -> StoredObject:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_large_report_streams_into_a_multipart_upload(
    reports_client: httpx.AsyncClient, reports_resources: Resources, s3: EmbeddedS3
) -> None:
    async with reports_resources.engine.begin() as connection:
        # Long names make wide rows: a multipart object from few rows.
        await connection.execute(
            text(
                "INSERT INTO products (id, sku, name, price, currency)"
                " SELECT gen_random_uuid(), 'BULK-' || n, repeat('x', 190) || n, 1, 'EUR'"
                " FROM generate_series(1, :n) AS n"
            ),
            {"n": PRODUCTS},
        )
        await connection.execute(
            text(
                "INSERT INTO product_views_daily (day, product_id, views)"
                " SELECT '2026-03-10', id, 1 FROM products"
            )
        )
    body = {"type": "top_viewed", "from": "2026-03-10", "to": "2026-03-10"}
    location = (await reports_client.post("/reports", json=body)).headers["location"]
    settings = reports_resources.settings.model_copy(update={"report_part_bytes": PART})
    stores: list[RecordingStore] = []

    def recording(settings: Settings) -> ObjectStore:
        stores.append(RecordingStore(S3ObjectStore.from_settings(settings)))
        return stores[-1]

    worker = Resources.from_settings(settings)
    try:
        await run_worker(worker, recording)
    finally:
        await worker.close()

    report = (await reports_client.get(location)).json()
    assert report["status"] == "READY", report
    assert report["row_count"] == PRODUCTS
    head = head_object(s3, report["object_key"])
    assert head["ContentLength"] == report["size_bytes"] > PART
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload of two parts
    (store,) = stores
    # Rows went up as they came, a fetch at a time: many chunks, none near a part.
    assert sum(store.chunks) == report["size_bytes"]
    assert len(store.chunks) >= PRODUCTS // reports_resources.settings.report_fetch_rows
    assert max(store.chunks) < PART // 10


async def test_a_build_past_its_timeout_ends_failed_with_what_to_do(
    reports_client: httpx.AsyncClient, reports_resources: Resources
) -> None:
    body = {"type": "orders_by_status", "from": "2026-03-01", "to": "2026-03-31"}
    location = (await reports_client.post("/reports", json=body)).headers["location"]
    settings = reports_resources.settings.model_copy(update={"report_build_timeout_seconds": 0.05})
    worker = Resources.from_settings(settings)
    try:
        await run_worker(worker, lambda s: StalledStore(S3ObjectStore.from_settings(s)))
    finally:
        await worker.close()

    report = (await reports_client.get(location)).json()
    assert report["status"] == "FAILED"
    assert report["reason"] == (
        "the report took longer than 0.05 s to build: ask for a shorter range"
    )
    # The worker's own transaction (its position, the report row) was left usable.
    async with reports_resources.engine.connect() as connection:
        settled = await connection.scalar(
            text("SELECT sum(sequence) FROM consumer_positions WHERE group_name = 'reports'")
        )
    assert settled == 1

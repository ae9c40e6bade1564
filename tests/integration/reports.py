"""Report fixtures: S3 on moto's server, fixture orders and views, the worker's run."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, text

from storefront import wiring
from storefront.adapters.object_store import ObjectStore, S3ObjectStore, s3_client
from storefront.events.consumer import run_consumer
from storefront.events.relay import relay_once
from storefront.orders.tables import order_items, orders
from storefront.reports.handlers import report_handlers
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.embedded import EmbeddedS3
from tests.integration.conftest import asgi_client, create_product

REGION = "us-east-1"


def s3_settings(settings: Settings, s3: EmbeddedS3, **changes: Any) -> Settings:
    return settings.model_copy(
        update={
            "reports_bucket": s3.bucket,
            "s3_endpoint_url": s3.url,
            "aws_region": REGION,
            # One round of the worker takes a fraction of a second.
            "worker_block_ms": 50,
            "time_budget_margin_ms": 20,
        }
        | changes
    )


@pytest.fixture(scope="session")
async def reports_resources(settings: Settings, s3: EmbeddedS3) -> AsyncIterator[Resources]:
    resources = Resources.from_settings(s3_settings(settings, s3))
    yield resources
    await resources.close()


@pytest.fixture(scope="session")
def reports_app(reports_resources: Resources) -> FastAPI:
    return wiring.reports_app(lambda: reports_resources)


@pytest.fixture
async def reports_client(
    reports_app: FastAPI, admin_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(reports_app, admin_headers) as client:
        yield client


@pytest.fixture(autouse=True)
async def no_reports(resources: Resources) -> None:
    async with resources.engine.begin() as connection:
        await connection.execute(
            text("TRUNCATE reports, product_views_daily, view_flush_batches, idempotency_keys")
        )


def deadline(seconds: float) -> Callable[[], int]:
    end = time.monotonic() + seconds
    return lambda: int((end - time.monotonic()) * 1000)


async def run_worker(
    resources: Resources, store_for: Callable[[Settings], ObjectStore] | None = None
) -> None:
    """What make run's schedules do: relay the outbox, then one reports-worker round."""
    settings = resources.settings
    await relay_once(resources.engine, resources.redis, settings)
    registry = report_handlers(lambda: resources, store_for or S3ObjectStore.from_settings)
    registry = registry.for_group("reports")
    await run_consumer(registry, resources.engine, resources.redis, settings, deadline(0.3))


def head_object(s3: EmbeddedS3, key: str) -> dict[str, Any]:
    head: dict[str, Any] = s3_client(s3.url, REGION).head_object(Bucket=s3.bucket, Key=key)
    return head


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


async def seed_orders(
    client: httpx.AsyncClient, resources: Resources, days: tuple[date, date, date]
) -> None:
    """Orders before, inside and after a range, of every status, in two currencies."""
    mug = (await create_product(client, sku="MUG", price="12.50"))["id"]
    tea = (await create_product(client, sku="TEA", price="4.20"))["id"]
    pot = (await create_product(client, sku="POT", price="30.00", currency="USD"))["id"]
    before, inside, after = days
    placed = [
        # (day, hour, status, currency, [(product, quantity, unit price)])
        (inside, 1, "CONFIRMED", "EUR", [(mug, 2, "12.50"), (tea, 1, "4.20")]),
        (inside, 23, "CONFIRMED", "EUR", [(mug, 1, "11.00")]),
        (inside, 12, "CONFIRMED", "USD", [(pot, 3, "30.00")]),
        (inside, 9, "PENDING", "EUR", [(tea, 5, "4.20")]),
        (inside, 10, "REJECTED", "EUR", [(mug, 9, "12.50")]),
        (inside, 11, "CANCELLED", "EUR", [(tea, 2, "4.20")]),
        (before, 23, "CONFIRMED", "EUR", [(mug, 7, "12.50")]),
        (after, 0, "CONFIRMED", "EUR", [(tea, 8, "4.20")]),
    ]
    async with resources.engine.begin() as connection:
        for n, (day, hour, status, currency, lines) in enumerate(placed):
            order_id = f"0190f0e0-0000-7000-8000-{n:012d}"
            total = sum(Decimal(price) * quantity for _, quantity, price in lines)
            await connection.execute(
                insert(orders).values(
                    id=order_id,
                    customer_id="alice",
                    status=status,
                    total=total,
                    currency=currency,
                    created_at=at(day, hour),
                    updated_at=at(day, hour),
                )
            )
            await connection.execute(
                insert(order_items),
                [
                    {"order_id": order_id, "product_id": p, "quantity": q, "unit_price": Decimal(u)}
                    for p, q, u in lines
                ],
            )

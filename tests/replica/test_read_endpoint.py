"""Reads that tolerate lag come from the replica; writes, and reads of what a
caller has just written, from the primary, even while the replica lags.

The replica is made to lag by pausing its replay: what the primary commits
afterwards is on the replica's disk but not visible there. So a read that
does not see a row the primary has was served by the replica.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.resources import Resources
from tests.integration.conftest import create_product
from tests.integration.reports import run_worker
from tests.replica.streaming import StreamingPair


async def scalar(engine: AsyncEngine, sql: str) -> object:
    async with engine.connect() as connection:
        return (await connection.execute(text(sql))).scalar_one()


async def insert_product_behind_the_apis_back(engine: AsyncEngine, sku: str) -> UUID:
    """A product committed on the primary that no cache knows about."""
    product_id = uuid4()
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO products (id, sku, name, price, currency)"
                " VALUES (:id, :sku, 'Teapot', 30, 'EUR')"
            ),
            {"id": product_id, "sku": sku},
        )
    return product_id


async def test_the_read_engine_is_the_replica_and_the_engine_the_primary(
    replica_resources: Resources,
) -> None:
    assert await scalar(replica_resources.read_engine, "SELECT pg_is_in_recovery()") is True
    assert await scalar(replica_resources.engine, "SELECT pg_is_in_recovery()") is False


async def test_catalog_misses_and_lists_are_read_from_the_replica(
    streaming_pair: StreamingPair, replica_resources: Resources, catalog: httpx.AsyncClient
) -> None:
    await streaming_pair.pause_replay()
    product_id = await insert_product_behind_the_apis_back(replica_resources.engine, "POT-1")

    assert (await catalog.get(f"/products/{product_id}")).status_code == 404
    assert (await catalog.get("/products")).json()["items"] == []
    assert await scalar(replica_resources.engine, "SELECT count(*) FROM products") == 1

    await streaming_pair.resume_replay()
    await streaming_pair.wait_until_caught_up()
    # Another page (another cache key): read from the replica, caught up now.
    listed = (await catalog.get("/products", params={"limit": 5})).json()["items"]
    assert [item["id"] for item in listed] == [str(product_id)]


async def test_popular_products_from_the_database_are_read_from_the_replica(
    streaming_pair: StreamingPair, replica_resources: Resources, catalog: httpx.AsyncClient
) -> None:
    product_id = uuid4()
    await streaming_pair.pause_replay()
    async with replica_resources.engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO product_views_daily (day, product_id, views) VALUES (:day, :id, 3)"),
            {"day": datetime.now(UTC).date(), "id": product_id},
        )

    # Redis has no counts: the flushed ones, from PostgreSQL (the replica).
    lagging = (await catalog.get("/products/popular", params={"window": "7d"})).json()
    await streaming_pair.resume_replay()
    await streaming_pair.wait_until_caught_up()
    caught_up = (await catalog.get("/products/popular", params={"window": "7d"})).json()

    assert (lagging["source"], lagging["items"]) == ("database", [])
    assert caught_up["items"] == [{"product_id": str(product_id), "views": 3}]


async def test_a_lagging_replica_does_not_hide_what_a_caller_just_wrote(
    streaming_pair: StreamingPair,
    replica_resources: Resources,
    catalog: httpx.AsyncClient,
    orders: httpx.AsyncClient,
) -> None:
    await streaming_pair.pause_replay()

    created = await catalog.post("/products", json={"sku": "MUG", "name": "Mug", "price": "9.50"})
    assert created.status_code == 201, created.text
    read_back = await catalog.get(created.headers["location"])
    assert read_back.status_code == 200
    assert read_back.json() == created.json()

    changed = await catalog.patch(created.headers["location"], json={"price": "11.00"})
    assert changed.status_code == 200
    assert (await catalog.get(created.headers["location"])).json()["price"] == "11.00"

    gone = await create_product(catalog, sku="GONE")
    assert (await catalog.delete(f"/products/{gone['id']}")).status_code == 204
    assert (await catalog.get(f"/products/{gone['id']}")).status_code == 404

    placed = await orders.post(
        "/orders", json={"items": [{"product_id": created.json()["id"], "quantity": 2}]}
    )
    assert placed.status_code == 201, placed.text
    order = await orders.get(placed.headers["location"])
    assert order.status_code == 200
    assert order.json()["total"] == "22.00"

    # All along, the replica had none of it: the reads above did not come from it.
    assert await scalar(replica_resources.read_engine, "SELECT count(*) FROM products") == 0
    assert await scalar(replica_resources.read_engine, "SELECT count(*) FROM orders") == 0


async def test_writes_never_go_to_the_read_engine(
    replica_resources: Resources,
    catalog: httpx.AsyncClient,
    orders: httpx.AsyncClient,
    reports: httpx.AsyncClient,
) -> None:
    # A write the read engine were given would fail like this one.
    with pytest.raises(DBAPIError, match="read-only transaction"):
        await insert_product_behind_the_apis_back(replica_resources.read_engine, "NOPE")

    category = await catalog.post("/categories", json={"name": "Kitchen"})
    assert category.status_code == 201, category.text
    assert (await catalog.get(category.headers["location"])).status_code == 200
    product = await create_product(catalog, sku="JUG", category_id=category.json()["id"])
    placed = await orders.post(
        "/orders", json={"items": [{"product_id": product["id"], "quantity": 1}]}
    )
    assert placed.status_code == 201, placed.text
    cancelled = await orders.post(f"{placed.headers['location']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    today = datetime.now(UTC).date().isoformat()
    report = await reports.post(
        "/reports", json={"type": "orders_by_status", "from": today, "to": today}
    )
    assert report.status_code == 202, report.text
    assert (await reports.get(report.headers["location"])).json()["status"] == "PENDING"


async def test_report_builds_read_from_the_replica(
    streaming_pair: StreamingPair, replica_resources: Resources, reports: httpx.AsyncClient
) -> None:
    day = datetime.now(UTC).date() - timedelta(days=2)
    body = {"type": "top_viewed", "from": day.isoformat(), "to": day.isoformat()}
    await streaming_pair.pause_replay()
    async with replica_resources.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO product_views_daily (day, product_id, views)"
                " VALUES (:day, gen_random_uuid(), 5), (:day, gen_random_uuid(), 7)"
            ),
            {"day": day},
        )

    lagging = await reports.post("/reports", json=body)
    await run_worker(replica_resources)
    await streaming_pair.resume_replay()
    await streaming_pair.wait_until_caught_up()
    caught_up = await reports.post("/reports", json=body)
    await run_worker(replica_resources)

    built = [(await reports.get(r.headers["location"])).json() for r in (lagging, caught_up)]
    assert [report["status"] for report in built] == ["READY", "READY"]
    assert [report["row_count"] for report in built] == [0, 2]

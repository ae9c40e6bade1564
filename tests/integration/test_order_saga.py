"""The order saga end to end on real PostgreSQL and Redis: API -> outbox ->
relay -> streams -> inventory worker -> relay -> order worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from sqlalchemy import text

from storefront import wiring
from storefront.events.consumer import run_consumer
from storefront.events.partitions import stream_key
from storefront.events.relay import relay_once
from storefront.events.status import group_statuses
from storefront.resources import Resources
from storefront.settings import Settings
from tests.integration.conftest import create_product

# The saga's two groups, as the composition root builds their workers.
INVENTORY = wiring.WORKERS["inventory"]().for_group("inventory")
ORDERS = wiring.WORKERS["orders"]().for_group("orders")


def budget(seconds: float) -> Callable[[], int]:
    deadline = time.monotonic() + seconds
    return lambda: int((deadline - time.monotonic()) * 1000)


def quick(settings: Settings) -> Settings:
    """Short blocks and margins, so one round of the saga takes well under a second."""
    return settings.model_copy(update={"worker_block_ms": 50, "time_budget_margin_ms": 20})


async def run_saga(resources: Resources, rounds: int = 2) -> None:
    """Relay and consume at least ``rounds`` times, then until nothing is left
    to do (a slow machine may need more rounds; the outcome must not)."""
    settings = quick(resources.settings)
    for round_number in range(20):
        for registry in (INVENTORY, ORDERS):
            await relay_once(resources.engine, resources.redis, settings)
            await run_consumer(registry, resources.engine, resources.redis, settings, budget(0.3))
        if round_number + 1 >= rounds and await settled(resources):
            return


async def settled(resources: Resources) -> bool:
    """No unpublished outbox row, and every group has read and acked everything."""
    async with resources.engine.connect() as connection:
        unpublished = await connection.scalar(
            text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        )
    statuses = await group_statuses(
        resources.redis, resources.settings, [INVENTORY.consumer, ORDERS.consumer]
    )
    return unpublished == 0 and all(s.lag == 0 and s.pending == 0 for s in statuses)


async def stocked_product(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient, on_hand: int, sku: str = "MUG"
) -> str:
    product = await create_product(client, sku=sku)
    response = await orders_client.put(
        f"/products/{product['id']}/stock", json={"on_hand": on_hand}
    )
    assert response.status_code == 200
    return str(product["id"])


async def place(orders_client: httpx.AsyncClient, *lines: tuple[str, int]) -> str:
    items = [{"product_id": product_id, "quantity": quantity} for product_id, quantity in lines]
    response = await orders_client.post("/orders", json={"items": items})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def events_of(resources: Resources, order_id: str) -> list[str]:
    async with resources.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT event_type FROM outbox WHERE aggregate_id = :id ORDER BY id"),
            {"id": order_id},
        )
        return [row.event_type for row in rows]


async def test_an_order_with_stock_is_confirmed_and_reserves_it(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient, resources: Resources
) -> None:
    mug = await stocked_product(client, orders_client, on_hand=5)
    order_id = await place(orders_client, (mug, 2))

    await run_saga(resources)

    order = (await orders_client.get(f"/orders/{order_id}")).json()
    stock = (await orders_client.get(f"/products/{mug}/stock")).json()
    assert order["status"] == "CONFIRMED"
    assert (stock["reserved"], stock["available"]) == (2, 3)
    assert await events_of(resources, order_id) == [
        "OrderPlaced",
        "StockReserved",
        "OrderConfirmed",
    ]


async def test_not_enough_stock_rejects_the_whole_order(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient, resources: Resources
) -> None:
    plenty = await stocked_product(client, orders_client, on_hand=10, sku="PLENTY")
    scarce = await stocked_product(client, orders_client, on_hand=1, sku="SCARCE")
    order_id = await place(orders_client, (plenty, 3), (scarce, 2))

    await run_saga(resources)

    order = (await orders_client.get(f"/orders/{order_id}")).json()
    assert order["status"] == "REJECTED"
    assert scarce in order["reason"]
    assert "2 requested, 1 available" in order["reason"]
    for product_id in (plenty, scarce):
        stock = (await orders_client.get(f"/products/{product_id}/stock")).json()
        assert stock["reserved"] == 0, "all items or none"
    assert await events_of(resources, order_id) == ["OrderPlaced", "StockRejected", "OrderRejected"]
    cancel = await orders_client.post(f"/orders/{order_id}/cancel")
    assert cancel.status_code == 409


async def test_cancelling_a_confirmed_order_releases_its_stock(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient, resources: Resources
) -> None:
    mug = await stocked_product(client, orders_client, on_hand=5)
    order_id = await place(orders_client, (mug, 4))
    await run_saga(resources)
    assert (await orders_client.get(f"/products/{mug}/stock")).json()["reserved"] == 4

    cancelled = await orders_client.post(f"/orders/{order_id}/cancel")
    await run_saga(resources)

    assert cancelled.json()["status"] == "CANCELLED"
    stock = (await orders_client.get(f"/products/{mug}/stock")).json()
    assert (stock["reserved"], stock["available"]) == (0, 5)
    assert await events_of(resources, order_id) == [
        "OrderPlaced",
        "StockReserved",
        "OrderConfirmed",
        "OrderCancelled",
        "StockReleased",
    ]


async def test_an_order_of_several_products_reserves_and_releases_each(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient, resources: Resources
) -> None:
    """One statement changes every product's row (an array join): each by its own quantity."""
    mug = await stocked_product(client, orders_client, on_hand=5, sku="MUG")
    cup = await stocked_product(client, orders_client, on_hand=7, sku="CUP")
    order_id = await place(orders_client, (mug, 2), (cup, 3))
    await run_saga(resources)

    async def reserved() -> list[int]:
        return [
            (await orders_client.get(f"/products/{product}/stock")).json()["reserved"]
            for product in (mug, cup)
        ]

    assert (await orders_client.get(f"/orders/{order_id}")).json()["status"] == "CONFIRMED"
    assert await reserved() == [2, 3]
    await orders_client.post(f"/orders/{order_id}/cancel")
    await run_saga(resources)
    assert await reserved() == [0, 0]


async def test_the_same_event_delivered_twice_changes_stock_once(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient, resources: Resources
) -> None:
    mug = await stocked_product(client, orders_client, on_hand=5)
    await place(orders_client, (mug, 2))
    settings = quick(resources.settings)
    await relay_once(resources.engine, resources.redis, settings)
    await run_consumer(INVENTORY, resources.engine, resources.redis, settings, budget(0.5))
    # Deliver every entry a second time, as after a failover to a replica
    # that had not seen the group's acknowledgements.
    for partition in range(settings.event_partitions):
        key = stream_key(settings.redis_key_prefix, partition)
        await resources.redis.xgroup_setid(key, "inventory", "0")

    stats = await run_consumer(INVENTORY, resources.engine, resources.redis, settings, budget(0.5))

    stock = (await orders_client.get(f"/products/{mug}/stock")).json()
    assert stock["reserved"] == 2
    assert stats.handled == 0
    assert stats.duplicates >= 1


async def test_concurrent_orders_and_cancels_keep_stock_consistent(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient, resources: Resources
) -> None:
    mug = await stocked_product(client, orders_client, on_hand=10)
    order_ids = await asyncio.gather(*(place(orders_client, (mug, 1)) for _ in range(24)))
    await asyncio.gather(
        *(orders_client.post(f"/orders/{order_id}/cancel") for order_id in order_ids[::3])
    )

    await run_saga(resources, rounds=3)

    orders = [(await orders_client.get(f"/orders/{o}")).json() for o in order_ids]
    statuses = [order["status"] for order in orders]
    confirmed = statuses.count("CONFIRMED")
    stock = (await orders_client.get(f"/products/{mug}/stock")).json()
    assert "PENDING" not in statuses
    assert statuses.count("CANCELLED") == len(order_ids[::3])
    assert confirmed == 10, "the stock of 10 went to 10 of the 16 orders not cancelled"
    assert stock["reserved"] == confirmed, "reserved = the confirmed quantities"


async def test_an_order_cancelled_before_reservation_reserves_nothing(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient, resources: Resources
) -> None:
    mug = await stocked_product(client, orders_client, on_hand=5)
    order_id = await place(orders_client, (mug, 3))
    await orders_client.post(f"/orders/{order_id}/cancel")

    await run_saga(resources)

    stock = (await orders_client.get(f"/products/{mug}/stock")).json()
    assert stock["reserved"] == 0
    assert await events_of(resources, order_id) == ["OrderPlaced", "OrderCancelled"]

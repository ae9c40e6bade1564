"""Checkout on real PostgreSQL and Redis: the cart becomes an order awaiting
payment with its stock held, in one transaction; caps per customer; holds
that expire (the sweep), and how the sweep can fail."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from storefront import wiring
from storefront.events.envelope import Event
from storefront.events.outbox import SqlOutbox
from storefront.orders.checkout import expire_overdue
from storefront.orders.unit_of_work import SqlOrdersUnitOfWork
from storefront.payments.events import PaymentSucceeded
from storefront.resources import Resources
from tests.integration.conftest import asgi_client, create_product
from tests.integration.test_order_saga import events_of, run_saga, stocked_product

Headers = Callable[[str], dict[str, str]]
EMAIL = {"email": "alice@example.com"}


@pytest.fixture
async def alice(orders_app: FastAPI, customer_headers: Headers) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(orders_app, customer_headers("alice")) as client:
        yield client


@pytest.fixture
async def bob(orders_app: FastAPI, customer_headers: Headers) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(orders_app, customer_headers("bob")) as client:
        yield client


async def fill_cart(shopper: httpx.AsyncClient, *lines: tuple[str, int]) -> None:
    for product_id, quantity in lines:
        answer = await shopper.put(f"/cart/items/{product_id}", json={"quantity": quantity})
        assert answer.status_code == 200, answer.text


async def stock_of(orders_client: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    return dict((await orders_client.get(f"/products/{product_id}/stock")).json())


async def statuses(resources: Resources, *order_ids: str) -> list[str]:
    async with resources.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT id::text, status FROM orders WHERE id::text = ANY(:ids)"),
            {"ids": list(order_ids)},
        )
        found = {order_id: status for order_id, status in rows}
    return [found[order_id] for order_id in order_ids]


async def sweep(resources: Resources, now: datetime, limit: int = 100) -> int:
    return await expire_overdue(
        SqlOrdersUnitOfWork(resources.engine, resources.settings), now, limit
    )


async def test_checkout_holds_the_stock_and_waits_for_the_payment(
    client: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    resources: Resources,
) -> None:
    mug = await stocked_product(client, orders_client, on_hand=5)
    await fill_cart(alice, (mug, 2))
    before = datetime.now(UTC)

    answer = await alice.post("/checkout", json=EMAIL)

    assert answer.status_code == 201, answer.text
    order = answer.json()
    assert answer.headers["location"] == f"/orders/{order['id']}"
    assert order["status"] == "AWAITING_PAYMENT"
    assert order["email"] == EMAIL["email"]
    assert order["payment"] is None  # the payments worker makes the PaymentIntent
    hold = timedelta(seconds=resources.settings.checkout_hold_seconds)
    due = datetime.fromisoformat(order["payment_due_at"])
    assert before + hold <= due <= datetime.now(UTC) + hold
    assert [line["quantity"] for line in order["items"]] == [2]
    assert (await stock_of(orders_client, mug))["reserved"] == 2
    assert (await alice.get("/cart")).json()["lines"] == []
    assert await events_of(resources, order["id"]) == ["OrderAwaitingPayment"]
    assert (await alice.get(f"/orders/{order['id']}")).json() == order


async def test_a_retried_checkout_replays_the_order(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    mug = await stocked_product(client, orders_client, on_hand=5)
    await fill_cart(alice, (mug, 1))
    key = {"Idempotency-Key": str(uuid.uuid4())}

    first = await alice.post("/checkout", json=EMAIL, headers=key)
    again = await alice.post("/checkout", json=EMAIL, headers=key)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert (await stock_of(orders_client, mug))["reserved"] == 1


async def test_an_empty_cart_or_a_bad_address_is_refused(alice: httpx.AsyncClient) -> None:
    empty = await alice.post("/checkout", json=EMAIL)
    bad = await alice.post("/checkout", json={"email": "not an address"})

    assert empty.status_code == 422
    assert "cart" in empty.json()["detail"]
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


async def test_not_enough_stock_holds_nothing_and_keeps_the_cart(
    client: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    resources: Resources,
) -> None:
    plenty = await stocked_product(client, orders_client, on_hand=10, sku="PLENTY")
    scarce = await stocked_product(client, orders_client, on_hand=1, sku="SCARCE")
    await fill_cart(alice, (plenty, 3), (scarce, 2))

    answer = await alice.post("/checkout", json=EMAIL)

    assert answer.status_code == 409
    assert f"{scarce} (2 wanted, 1 available)" in answer.json()["detail"]
    assert [(await stock_of(orders_client, p))["reserved"] for p in (plenty, scarce)] == [0, 0]
    assert len((await alice.get("/cart")).json()["lines"]) == 2
    async with resources.engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM orders")) == 0


async def test_one_customer_cannot_hold_more_than_the_cap(
    client: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    resources: Resources,
) -> None:
    cap = resources.settings.checkout_max_units_per_product
    mug = await stocked_product(client, orders_client, on_hand=100)
    await fill_cart(alice, (mug, cap - 1))
    assert (await alice.post("/checkout", json=EMAIL)).status_code == 201

    # Concurrent checkouts of 1 more each: only one fits under the cap.
    async def one_more() -> int:
        await fill_cart(alice, (mug, 1))
        return (await alice.post("/checkout", json=EMAIL)).status_code

    codes = await asyncio.gather(*(one_more() for _ in range(4)))
    await fill_cart(bob, (mug, cap))
    bobs = await bob.post("/checkout", json={"email": "bob@example.com"})

    assert sorted(codes).count(201) == 1
    assert set(codes) <= {201, 409, 422}  # 422: the cart was emptied by the winner
    assert bobs.status_code == 201  # the cap is per customer
    assert (await stock_of(orders_client, mug))["reserved"] == 2 * cap


async def test_checkout_answers_503_while_carts_are_unreachable(
    orders_app: FastAPI, customer_headers: Headers, resources: Resources
) -> None:
    from storefront.settings import Settings

    unreachable: Settings = resources.settings.model_copy(
        update={"redis_url": "redis://127.0.0.1:1/0", "redis_socket_timeout": 0.2}
    )
    broken = Resources.from_settings(unreachable)
    try:
        app = wiring.orders_app(lambda: broken)
        async with asgi_client(app, customer_headers("alice")) as shopper:
            answer = await shopper.post("/checkout", json=EMAIL)
    finally:
        await broken.close()

    assert answer.status_code == 503
    assert "retry-after" in answer.headers


async def test_an_unpaid_order_expires_and_its_stock_comes_back(
    client: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    resources: Resources,
) -> None:
    mug = await stocked_product(client, orders_client, on_hand=3)
    await fill_cart(alice, (mug, 3))
    order_id = (await alice.post("/checkout", json=EMAIL)).json()["id"]
    due = datetime.now(UTC) + timedelta(seconds=resources.settings.checkout_hold_seconds)

    assert await sweep(resources, due - timedelta(seconds=1)) == 0  # not yet due
    assert await sweep(resources, due + timedelta(seconds=1)) == 1
    await run_saga(resources)

    assert await statuses(resources, order_id) == ["EXPIRED"]
    assert (await stock_of(orders_client, mug))["reserved"] == 0
    assert await events_of(resources, order_id) == [
        "OrderAwaitingPayment",
        "OrderExpired",
        "StockReleased",
    ]
    assert await sweep(resources, due + timedelta(hours=1)) == 0  # once


async def test_a_sweep_that_dies_leaves_every_order_as_it_was(
    client: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    resources: Resources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mug = await stocked_product(client, orders_client, on_hand=3)
    await fill_cart(alice, (mug, 1))
    order_id = (await alice.post("/checkout", json=EMAIL)).json()["id"]
    later = datetime.now(UTC) + timedelta(days=1)

    async def killed(self: SqlOutbox, events: list[Event]) -> None:
        raise ConnectionResetError("the sweep's container was killed here")

    with monkeypatch.context() as patched:
        patched.setattr(SqlOutbox, "add", killed)
        with pytest.raises(ConnectionResetError):
            await sweep(resources, later)
    assert await statuses(resources, order_id) == ["AWAITING_PAYMENT"]
    assert await events_of(resources, order_id) == ["OrderAwaitingPayment"]

    assert await sweep(resources, later) == 1  # the next sweep does it whole
    assert await statuses(resources, order_id) == ["EXPIRED"]


async def test_a_payment_and_the_sweep_at_once_end_one_way_only(
    client: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    resources: Resources,
) -> None:
    """The payment's confirmation holds the order's row: the sweep skips it
    rather than wait, and the order is confirmed, never both."""
    mug = await stocked_product(client, orders_client, on_hand=3)
    await fill_cart(alice, (mug, 1))
    paid = (await alice.post("/checkout", json=EMAIL)).json()["id"]
    await fill_cart(alice, (mug, 1))
    unpaid = (await alice.post("/checkout", json=EMAIL)).json()["id"]
    later = datetime.now(UTC) + timedelta(days=1)

    async with resources.engine.connect() as connection, connection.begin():
        # A confirmation in progress: the orders worker locked the row.
        await connection.execute(
            text("SELECT 1 FROM orders WHERE id = :id FOR UPDATE"), {"id": paid}
        )
        expired = await sweep(resources, later)
        await connection.execute(
            text("UPDATE orders SET status = 'CONFIRMED' WHERE id = :id"), {"id": paid}
        )

    assert expired == 1
    assert await statuses(resources, paid, unpaid) == ["CONFIRMED", "EXPIRED"]


async def test_a_payment_after_the_expiry_leaves_the_order_expired(
    client: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    resources: Resources,
) -> None:
    """The sweep won: the late capture changes nothing here (the payments
    worker refunds it when it handles the OrderExpired)."""
    mug = await stocked_product(client, orders_client, on_hand=3)
    await fill_cart(alice, (mug, 1))
    order_id = (await alice.post("/checkout", json=EMAIL)).json()["id"]
    await sweep(resources, datetime.now(UTC) + timedelta(days=1))
    async with resources.engine.begin() as connection:
        late = PaymentSucceeded(order_id=uuid.UUID(order_id), intent_id="pi_late")
        await SqlOutbox(connection, resources.settings.event_partitions).add(
            [Event.of(late, uuid.UUID(order_id))]
        )

    await run_saga(resources)

    assert await statuses(resources, order_id) == ["EXPIRED"]
    assert (await stock_of(orders_client, mug))["reserved"] == 0
    assert "OrderConfirmed" not in await events_of(resources, order_id)


async def test_a_paid_order_is_confirmed_and_keeps_its_stock(
    client: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    resources: Resources,
) -> None:
    mug = await stocked_product(client, orders_client, on_hand=3)
    await fill_cart(alice, (mug, 2))
    order_id = (await alice.post("/checkout", json=EMAIL)).json()["id"]
    async with resources.engine.begin() as connection:
        paid = PaymentSucceeded(order_id=uuid.UUID(order_id), intent_id="pi_paid")
        await SqlOutbox(connection, resources.settings.event_partitions).add(
            [Event.of(paid, uuid.UUID(order_id))]
        )

    await run_saga(resources)
    await sweep(resources, datetime.now(UTC) + timedelta(days=1))

    assert await statuses(resources, order_id) == ["CONFIRMED"]
    assert (await stock_of(orders_client, mug))["reserved"] == 2
    cancelled = await alice.post(f"/orders/{order_id}/cancel")
    await run_saga(resources)
    assert cancelled.json()["status"] == "CANCELLED"
    assert (await stock_of(orders_client, mug))["reserved"] == 0


async def test_checkout_prices_are_read_at_checkout(
    client: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    alice: httpx.AsyncClient,
) -> None:
    product = await create_product(client, sku="TEA", price="4.20")
    await orders_client.put(f"/products/{product['id']}/stock", json={"on_hand": 5})
    await fill_cart(alice, (str(product["id"]), 2))
    changed = await client.patch(f"/products/{product['id']}", json={"price": "5.00"})
    assert changed.status_code == 200, changed.text

    order = (await alice.post("/checkout", json=EMAIL)).json()

    assert order["total"] == "10.00"

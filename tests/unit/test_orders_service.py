"""Order use cases on the fake unit of work: the rules, without a database."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest

from storefront.auth.principal import Principal
from storefront.errors import InvalidInput
from storefront.idempotency import IdempotencyKey
from storefront.ids import new_id
from storefront.orders import service
from storefront.orders.domain import (
    OrderNotCancellable,
    OrderNotFound,
    OrderQuery,
    OrderStatus,
    PlaceOrder,
)
from tests.unit.fakes import FakeOrdersUnitOfWork

MUG, TEA, YEN = new_id(), new_id(), new_id()
PRICES = {
    MUG: (Decimal("12.50"), "EUR"),
    TEA: (Decimal("4.00"), "EUR"),
    YEN: (Decimal("900"), "JPY"),
}
ALICE = Principal("alice")


def request(*lines: tuple[UUID, int]) -> PlaceOrder:
    return PlaceOrder.model_validate(
        {"items": [{"product_id": str(pid), "quantity": qty} for pid, qty in lines]}
    )


async def test_an_order_is_priced_from_the_catalog_and_announced_in_one_commit() -> None:
    uow = FakeOrdersUnitOfWork(PRICES)

    placed = await service.place_order(request((MUG, 2), (TEA, 1)), uow, customer_id="alice")

    assert uow.committed
    assert placed.order.total == Decimal("29.00")
    assert (placed.order.status, placed.order.currency) == (OrderStatus.PENDING, "EUR")
    assert uow.orders.rows == {placed.order.id: placed.order}
    (event,) = uow.outbox.events
    assert (event.event_type, event.aggregate_id) == ("OrderPlaced", str(placed.order.id))
    assert event.payload["total"] == "29.00"


async def test_an_unknown_product_names_its_line_and_writes_nothing() -> None:
    uow = FakeOrdersUnitOfWork(PRICES)

    with pytest.raises(InvalidInput) as refused:
        await service.place_order(request((MUG, 1), (new_id(), 1)), uow, customer_id="alice")

    assert refused.value.field == "items.1.product_id"
    assert (uow.orders.rows, uow.outbox.events, uow.committed) == ({}, [], False)


async def test_products_priced_in_two_currencies_are_refused() -> None:
    uow = FakeOrdersUnitOfWork(PRICES)

    with pytest.raises(InvalidInput) as refused:
        await service.place_order(request((MUG, 1), (YEN, 1)), uow, customer_id="alice")

    assert refused.value.field == "items"


async def test_a_total_larger_than_an_order_holds_is_refused_not_a_500() -> None:
    dearest = new_id()
    uow = FakeOrdersUnitOfWork({dearest: (Decimal("9999999999.99"), "EUR")})

    with pytest.raises(InvalidInput) as refused:
        await service.place_order(request((dearest, 2)), uow, customer_id="alice")

    assert refused.value.field == "items"
    assert "more than 9999999999.99" in refused.value.reason
    assert uow.orders.rows == {}


async def test_a_retried_request_with_its_key_is_answered_once() -> None:
    uow = FakeOrdersUnitOfWork(PRICES)
    key = IdempotencyKey(scope="alice POST /orders", key="k-1", fingerprint="f")

    first = await service.place_order(request((MUG, 1)), uow, "alice", idempotency_key=key)
    again = await service.place_order(request((MUG, 1)), uow, "alice", idempotency_key=key)

    assert (first.replayed, again.replayed) == (False, True)
    assert again.order == first.order
    assert len(uow.orders.rows) == len(uow.outbox.events) == 1


async def test_cancelling_announces_the_status_it_left() -> None:
    uow = FakeOrdersUnitOfWork(PRICES)
    order = (await service.place_order(request((MUG, 1)), uow, customer_id="alice")).order

    cancelled = await service.cancel_order(order.id, ALICE, uow)

    assert cancelled.status is OrderStatus.CANCELLED
    assert uow.outbox.events[-1].event_type == "OrderCancelled"
    assert uow.outbox.events[-1].payload["previous_status"] == "PENDING"


async def test_another_customers_order_is_not_found_and_a_rejected_one_not_cancellable() -> None:
    uow = FakeOrdersUnitOfWork(PRICES)
    order = (await service.place_order(request((MUG, 1)), uow, customer_id="alice")).order

    with pytest.raises(OrderNotFound):
        await service.cancel_order(order.id, Principal("bob"), uow)
    await uow.orders.set_status([order.id], OrderStatus.REJECTED)
    with pytest.raises(OrderNotCancellable):
        await service.cancel_order(order.id, ALICE, uow)
    assert [event.event_type for event in uow.outbox.events] == ["OrderPlaced"]


async def test_a_customer_lists_only_their_own_orders() -> None:
    uow = FakeOrdersUnitOfWork(PRICES)
    mine = (await service.place_order(request((MUG, 1)), uow, customer_id="alice")).order
    await service.place_order(request((TEA, 1)), uow, customer_id="bob")

    page = await service.list_orders(OrderQuery(limit=10), ALICE, uow)

    assert [order.id for order in page.items] == [mine.id]
    assert page.next_cursor is None

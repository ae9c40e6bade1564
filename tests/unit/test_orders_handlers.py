"""The order worker's handlers on the fake unit of work."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from storefront.events.envelope import Event
from storefront.ids import new_id
from storefront.inventory.events import Shortage, StockRejected, StockReserved
from storefront.orders.domain import Order, OrderStatus
from storefront.orders.handlers import confirm_orders, reject_order
from tests.unit.fakes import FakeOrdersUnitOfWork


def stored(uow: FakeOrdersUnitOfWork, status: OrderStatus) -> UUID:
    now = datetime.now(UTC)
    order = Order(
        id=new_id(), status=status, items=[], total=Decimal(0), currency="EUR",
        created_at=now, updated_at=now,
    )  # fmt: skip
    uow.orders.rows[order.id] = order
    return order.id


def reserved(order_id: UUID) -> tuple[StockReserved, Event]:
    payload = StockReserved(order_id=order_id)
    return payload, Event.of(payload, order_id)


async def test_a_run_confirms_the_pending_orders_and_leaves_the_cancelled_ones() -> None:
    uow = FakeOrdersUnitOfWork()
    pending, cancelled = stored(uow, OrderStatus.PENDING), stored(uow, OrderStatus.CANCELLED)

    emitted = await confirm_orders([reserved(pending), reserved(cancelled)], uow)

    assert uow.orders.rows[pending].status is OrderStatus.CONFIRMED
    assert uow.orders.rows[cancelled].status is OrderStatus.CANCELLED
    assert [(e.event_type, e.aggregate_id) for e in emitted] == [("OrderConfirmed", str(pending))]


async def test_a_rejection_says_which_products_fell_short() -> None:
    uow = FakeOrdersUnitOfWork()
    order_id, mug = stored(uow, OrderStatus.PENDING), new_id()
    payload = StockRejected(
        order_id=order_id, shortages=[Shortage(product_id=mug, requested=3, available=1)]
    )

    emitted = await reject_order(payload, Event.of(payload, order_id), uow)

    order = uow.orders.rows[order_id]
    assert order.status is OrderStatus.REJECTED
    assert order.reason == f"not enough stock: {mug} (3 requested, 1 available)"
    assert [event.event_type for event in emitted] == ["OrderRejected"]

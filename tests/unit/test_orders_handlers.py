"""The order worker's handlers on the fake unit of work."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from storefront.events.envelope import Event
from storefront.ids import new_id
from storefront.inventory.events import Shortage, StockRejected, StockReserved
from storefront.orders.domain import Order, OrderStatus
from storefront.orders.handlers import (
    confirm_orders,
    confirm_paid_order,
    fail_unpaid_order,
    reject_order,
)
from storefront.payments.events import PaymentFailed, PaymentSucceeded
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


async def test_a_payment_confirms_only_an_order_still_awaiting_it() -> None:
    uow = FakeOrdersUnitOfWork()
    awaiting, expired = stored(uow, OrderStatus.AWAITING_PAYMENT), stored(uow, OrderStatus.EXPIRED)

    emitted: list[Event] = []
    for order_id in (awaiting, expired):
        paid = PaymentSucceeded(order_id=order_id, intent_id="pi_1")
        emitted += await confirm_paid_order(paid, Event.of(paid, order_id), uow)

    assert uow.orders.rows[awaiting].status is OrderStatus.CONFIRMED
    assert uow.orders.rows[expired].status is OrderStatus.EXPIRED
    assert [(e.event_type, e.aggregate_id) for e in emitted] == [("OrderConfirmed", str(awaiting))]


async def test_a_failed_payment_ends_an_awaiting_order_but_not_a_paid_one() -> None:
    uow = FakeOrdersUnitOfWork()
    awaiting = stored(uow, OrderStatus.AWAITING_PAYMENT)
    confirmed = stored(uow, OrderStatus.CONFIRMED)

    emitted: list[Event] = []
    for order_id in (awaiting, confirmed):
        failed = PaymentFailed(order_id=order_id, intent_id="pi_1", reason="card declined")
        emitted += await fail_unpaid_order(failed, Event.of(failed, order_id), uow)

    assert uow.orders.rows[awaiting].status is OrderStatus.PAYMENT_FAILED
    assert uow.orders.rows[awaiting].reason == "card declined"
    assert uow.orders.rows[confirmed].status is OrderStatus.CONFIRMED
    assert [e.event_type for e in emitted] == ["OrderPaymentFailed"]

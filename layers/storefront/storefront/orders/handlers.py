"""What the order worker does with inventory's and the payment provider's
answers: confirm or reject an order placed with ``POST /orders``; confirm a
checkout's order once paid, or end it PAYMENT_FAILED.

An order cancelled meanwhile stays cancelled: inventory releases whatever it
reserved when it sees the OrderCancelled that follows in the same partition.
A payment that arrives for an order no longer awaiting it (expired, cancelled)
changes nothing here: the payments worker, handling that order's OrderExpired
or OrderCancelled, finds the intent captured and refunds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from storefront.events.envelope import Event
from storefront.events.handlers import HandlerRegistry
from storefront.inventory.events import StockRejected, StockReserved
from storefront.orders.domain import OrderStatus
from storefront.orders.events import OrderConfirmed, OrderPaymentFailed, OrderRejected
from storefront.orders.unit_of_work import OrdersUnitOfWork, SqlOrdersUnitOfWork
from storefront.payments.events import PaymentFailed, PaymentSucceeded

AWAITING = OrderStatus.AWAITING_PAYMENT

order_handlers = HandlerRegistry(
    unit_of_work=lambda run, settings: SqlOrdersUnitOfWork.on(run.connection, settings)
)


@order_handlers.on_run(StockReserved)
async def confirm_orders(
    reserved: Sequence[tuple[StockReserved, Event]], uow: OrdersUnitOfWork
) -> Sequence[Event]:
    """Confirm the orders whose stock was reserved and that are still pending:
    a run of them with one locking statement and one update."""
    statuses = await uow.orders.lock_statuses([p.order_id for p, _ in reserved])
    confirmed = [
        (payload.order_id, event)
        for payload, event in reserved
        if statuses.get(payload.order_id) is OrderStatus.PENDING
    ]
    if confirmed:
        await uow.orders.set_status([order_id for order_id, _ in confirmed], OrderStatus.CONFIRMED)
    return [
        Event.of(OrderConfirmed(order_id=order_id), order_id, caused_by=event)
        for order_id, event in confirmed
    ]


async def _move(
    uow: OrdersUnitOfWork,
    order_id: UUID,
    *,
    only_from: OrderStatus,
    to: OrderStatus,
    reason: str | None = None,
) -> bool:
    """Lock the order and move it to ``to`` if it is still ``only_from``."""
    statuses = await uow.orders.lock_statuses([order_id])
    if statuses.get(order_id) is not only_from:
        return False
    await uow.orders.set_status([order_id], to, reason)
    return True


@order_handlers.on(StockRejected)
async def reject_order(
    payload: StockRejected, event: Event, uow: OrdersUnitOfWork
) -> Sequence[Event]:
    order_id = payload.order_id
    reason = "not enough stock: " + ", ".join(
        f"{s.product_id} ({s.requested} requested, {s.available} available)"
        for s in payload.shortages
    )
    if not await _move(
        uow, order_id, only_from=OrderStatus.PENDING, to=OrderStatus.REJECTED, reason=reason
    ):
        return []
    return [Event.of(OrderRejected(order_id=order_id, reason=reason), order_id, caused_by=event)]


@order_handlers.on(PaymentSucceeded)
async def confirm_paid_order(
    payload: PaymentSucceeded, event: Event, uow: OrdersUnitOfWork
) -> Sequence[Event]:
    order_id = payload.order_id
    if not await _move(uow, order_id, only_from=AWAITING, to=OrderStatus.CONFIRMED):
        return []
    return [Event.of(OrderConfirmed(order_id=order_id), order_id, caused_by=event)]


@order_handlers.on(PaymentFailed)
async def fail_unpaid_order(
    payload: PaymentFailed, event: Event, uow: OrdersUnitOfWork
) -> Sequence[Event]:
    order_id, reason = payload.order_id, payload.reason
    if not await _move(
        uow, order_id, only_from=AWAITING, to=OrderStatus.PAYMENT_FAILED, reason=reason
    ):
        return []
    failed = OrderPaymentFailed(order_id=order_id, reason=reason)
    return [Event.of(failed, order_id, caused_by=event)]

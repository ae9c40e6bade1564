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

from storefront.events.envelope import Event
from storefront.events.handlers import HandlerRegistry
from storefront.inventory.events import StockRejected, StockReserved
from storefront.orders.domain import OrderStatus
from storefront.orders.events import OrderConfirmed, OrderPaymentFailed, OrderRejected
from storefront.orders.unit_of_work import OrdersUnitOfWork, SqlOrdersUnitOfWork
from storefront.payments.events import PaymentFailed, PaymentSucceeded

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


@order_handlers.on(StockRejected)
async def reject_order(
    payload: StockRejected, event: Event, uow: OrdersUnitOfWork
) -> Sequence[Event]:
    order_id = payload.order_id
    statuses = await uow.orders.lock_statuses([order_id])
    if statuses.get(order_id) is not OrderStatus.PENDING:
        return []
    reason = "not enough stock: " + ", ".join(
        f"{s.product_id} ({s.requested} requested, {s.available} available)"
        for s in payload.shortages
    )
    await uow.orders.set_status([order_id], OrderStatus.REJECTED, reason)
    return [Event.of(OrderRejected(order_id=order_id, reason=reason), order_id, caused_by=event)]


@order_handlers.on(PaymentSucceeded)
async def confirm_paid_order(
    payload: PaymentSucceeded, event: Event, uow: OrdersUnitOfWork
) -> Sequence[Event]:
    order_id = payload.order_id
    statuses = await uow.orders.lock_statuses([order_id])
    if statuses.get(order_id) is not OrderStatus.AWAITING_PAYMENT:
        return []
    await uow.orders.set_status([order_id], OrderStatus.CONFIRMED)
    return [Event.of(OrderConfirmed(order_id=order_id), order_id, caused_by=event)]


@order_handlers.on(PaymentFailed)
async def fail_unpaid_order(
    payload: PaymentFailed, event: Event, uow: OrdersUnitOfWork
) -> Sequence[Event]:
    order_id = payload.order_id
    statuses = await uow.orders.lock_statuses([order_id])
    if statuses.get(order_id) is not OrderStatus.AWAITING_PAYMENT:
        return []
    await uow.orders.set_status([order_id], OrderStatus.PAYMENT_FAILED, payload.reason)
    failed = OrderPaymentFailed(order_id=order_id, reason=payload.reason)
    return [Event.of(failed, order_id, caused_by=event)]

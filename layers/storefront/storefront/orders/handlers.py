"""What the order worker does with inventory's answers: confirm or reject.

An order cancelled meanwhile stays cancelled: inventory releases whatever it
reserved when it sees the OrderCancelled that follows in the same partition.
"""

from __future__ import annotations

from collections.abc import Sequence

from storefront.adapters.database import UnitOfWork
from storefront.events.envelope import Event
from storefront.events.handlers import HandlerRegistry
from storefront.inventory.events import StockRejected, StockReserved
from storefront.orders import repository
from storefront.orders.domain import OrderStatus
from storefront.orders.events import OrderConfirmed, OrderRejected

order_handlers = HandlerRegistry()


@order_handlers.on_run(StockReserved)
async def confirm_orders(
    reserved: Sequence[tuple[StockReserved, Event]], uow: UnitOfWork
) -> Sequence[Event]:
    """Confirm the orders whose stock was reserved and that are still pending:
    a run of them with one locking statement and one update."""
    statuses = await repository.lock_orders(uow.connection, [p.order_id for p, _ in reserved])
    confirmed = [
        (payload.order_id, event)
        for payload, event in reserved
        if statuses.get(payload.order_id) is OrderStatus.PENDING
    ]
    if confirmed:
        await repository.confirm_orders(uow.connection, [order_id for order_id, _ in confirmed])
    return [
        Event.of(OrderConfirmed(order_id=order_id), order_id, caused_by=event)
        for order_id, event in confirmed
    ]


@order_handlers.on(StockRejected)
async def reject_order(payload: StockRejected, event: Event, uow: UnitOfWork) -> Sequence[Event]:
    order_id = payload.order_id
    if await repository.lock_order(uow.connection, order_id) is not OrderStatus.PENDING:
        return []
    reason = "not enough stock: " + ", ".join(
        f"{s.product_id} ({s.requested} requested, {s.available} available)"
        for s in payload.shortages
    )
    await repository.set_status(uow.connection, order_id, OrderStatus.REJECTED, reason)
    return [Event.of(OrderRejected(order_id=order_id, reason=reason), order_id, caused_by=event)]

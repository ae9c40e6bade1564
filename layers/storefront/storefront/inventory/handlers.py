"""What the inventory worker does: reserve a whole order's stock, or none of
it, and release it when the order is cancelled (compensation)."""

from __future__ import annotations

from collections.abc import Sequence

from storefront.adapters.database import UnitOfWork
from storefront.events.envelope import Event
from storefront.events.handlers import HandlerRegistry
from storefront.inventory import repository
from storefront.inventory.events import Shortage, StockRejected, StockReleased, StockReserved
from storefront.orders import repository as orders
from storefront.orders.domain import OrderStatus
from storefront.orders.events import OrderCancelled, OrderPlaced

inventory_handlers = HandlerRegistry("inventory")


@inventory_handlers.on(OrderPlaced)
async def reserve_stock(payload: OrderPlaced, event: Event, uow: UnitOfWork) -> Sequence[Event]:
    # The order's row lock serialises this event with a concurrent cancel of
    # the same order, so the order's events commit in outbox id order. An
    # order cancelled before its stock was reserved holds nothing: reserving
    # would only starve other orders until the release came through.
    if await orders.lock_order(uow.connection, payload.order_id) is not OrderStatus.PENDING:
        return []
    wanted = {line.product_id: line.quantity for line in payload.items}
    stock = await repository.lock_stock(uow.connection, sorted(wanted))
    shortages = [
        Shortage(product_id=product_id, requested=quantity, available=stock[product_id].available)
        for product_id, quantity in sorted(wanted.items())
        if stock[product_id].available < quantity
    ]
    if shortages:
        rejected = StockRejected(order_id=payload.order_id, shortages=shortages)
        return [Event.of(rejected, payload.order_id, caused_by=event)]
    await repository.reserve(uow.connection, payload.order_id, wanted)
    return [Event.of(StockReserved(order_id=payload.order_id), payload.order_id, caused_by=event)]


@inventory_handlers.on(OrderCancelled)
async def release_stock(payload: OrderCancelled, event: Event, uow: UnitOfWork) -> Sequence[Event]:
    await orders.lock_order(uow.connection, payload.order_id)
    held = await repository.take_reservation(uow.connection, payload.order_id)
    if held is None:
        return []  # rejected orders hold nothing
    await repository.lock_stock(uow.connection, sorted(held))
    await repository.add_reserved(uow.connection, {pid: -qty for pid, qty in held.items()})
    return [Event.of(StockReleased(order_id=payload.order_id), payload.order_id, caused_by=event)]

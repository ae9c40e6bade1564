"""What the inventory worker does: reserve a whole order's stock, or none of
it, and release it when the order is cancelled (compensation).

Inventory decides from its own tables only: the stock levels and the
reservations it made (with the quantities each holds). It never reads or
locks an order. An order's ``OrderPlaced`` always comes before its
``OrderCancelled`` (the orders context writes both under the order's row
lock, and the partition keeps their order), so an order cancelled before its
stock was reserved is reserved and, a moment later, released.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from storefront.adapters.database import UnitOfWork
from storefront.events.envelope import Event
from storefront.events.handlers import HandlerRegistry
from storefront.inventory import repository
from storefront.inventory.events import Shortage, StockRejected, StockReleased, StockReserved
from storefront.orders.events import OrderCancelled, OrderPlaced

inventory_handlers = HandlerRegistry()


@inventory_handlers.on_run(OrderPlaced)
async def reserve_stock(
    placed: Sequence[tuple[OrderPlaced, Event]], uow: UnitOfWork
) -> Sequence[Event]:
    """Reserve each order's stock, or none of it, in the order they were placed.

    A run of orders at once: all their stock rows are locked in one statement
    (in id order, so concurrent runs cannot deadlock), the decisions are made
    here one order after the other against what the earlier ones took, and
    the reservations written in one statement.
    """
    product_ids = sorted({line.product_id for payload, _ in placed for line in payload.items})
    stock = await repository.lock_stock(uow.connection, product_ids)
    available = {product_id: level.available for product_id, level in stock.items()}
    reserved: dict[UUID, dict[UUID, int]] = {}
    answers: list[Event] = []
    for payload, event in placed:
        wanted = {line.product_id: line.quantity for line in payload.items}
        shortages = [
            Shortage(product_id=product_id, requested=quantity, available=available[product_id])
            for product_id, quantity in sorted(wanted.items())
            if available[product_id] < quantity
        ]
        if shortages:
            rejected = StockRejected(order_id=payload.order_id, shortages=shortages)
            answers.append(Event.of(rejected, payload.order_id, caused_by=event))
            continue
        for product_id, quantity in wanted.items():
            available[product_id] -= quantity
        reserved[payload.order_id] = wanted
        reservation = StockReserved(order_id=payload.order_id)
        answers.append(Event.of(reservation, payload.order_id, caused_by=event))
    if reserved:
        await repository.reserve_orders(uow.connection, reserved)
    return answers


@inventory_handlers.on(OrderCancelled)
async def release_stock(payload: OrderCancelled, event: Event, uow: UnitOfWork) -> Sequence[Event]:
    held = await repository.take_reservation(uow.connection, payload.order_id)
    if held is None:
        return []  # rejected orders hold nothing
    await repository.lock_stock(uow.connection, sorted(held))
    await repository.add_reserved(uow.connection, {pid: -qty for pid, qty in held.items()})
    return [Event.of(StockReleased(order_id=payload.order_id), payload.order_id, caused_by=event)]

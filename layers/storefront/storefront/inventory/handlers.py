"""What the inventory worker does: reserve a whole order's stock, or none of
it, and release it when the order is cancelled (compensation), or when a
checkout's hold expires or its payment fails.

Inventory writes only its own tables: the stock levels and the reservations
it made, with the quantities each holds. It asks the orders context (its
facade, a read without a lock) which orders are still pending, so an order
cancelled before its stock was reserved holds nothing: reserving it would
only starve other orders until the release came through. An order cancelled
just after that read is reserved and, once its ``OrderCancelled`` arrives
(always after its ``OrderPlaced``: the orders context writes both under the
order's row lock, and the partition keeps their order), released.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from storefront.events.envelope import Event
from storefront.events.handlers import HandlerRegistry
from storefront.inventory.events import Shortage, StockRejected, StockReleased, StockReserved
from storefront.inventory.unit_of_work import InventoryUnitOfWork, SqlInventoryUnitOfWork
from storefront.orders.events import (
    OrderCancelled,
    OrderExpired,
    OrderPaymentFailed,
    OrderPlaced,
)

inventory_handlers = HandlerRegistry(
    unit_of_work=lambda run, settings: SqlInventoryUnitOfWork.on(run.connection, settings)
)


@inventory_handlers.on_run(OrderPlaced)
async def reserve_stock(
    placed: Sequence[tuple[OrderPlaced, Event]], uow: InventoryUnitOfWork
) -> Sequence[Event]:
    """Reserve each order's stock, or none of it, in the order they were placed.

    A run of orders at once: all their stock rows are locked in one statement
    (in id order, so concurrent runs cannot deadlock), the decisions are made
    here one order after the other against what the earlier ones took, and
    the reservations written in one statement.
    """
    pending = await uow.orders.pending([payload.order_id for payload, _ in placed])
    placed = [(payload, event) for payload, event in placed if payload.order_id in pending]
    if not placed:
        return []
    product_ids = sorted({line.product_id for payload, _ in placed for line in payload.items})
    stock = await uow.stock.lock(product_ids)
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
        await uow.stock.reserve(reserved)
    return answers


async def release_stock(
    payload: OrderCancelled | OrderExpired | OrderPaymentFailed,
    event: Event,
    uow: InventoryUnitOfWork,
) -> Sequence[Event]:
    """Give back what the order holds: cancelled, or checkout's hold that
    expired or whose payment failed."""
    if await uow.stock.release(payload.order_id) is None:
        return []  # rejected orders hold nothing
    return [Event.of(StockReleased(order_id=payload.order_id), payload.order_id, caused_by=event)]


inventory_handlers.on(OrderCancelled)(release_stock)
inventory_handlers.on(OrderExpired)(release_stock)
inventory_handlers.on(OrderPaymentFailed)(release_stock)

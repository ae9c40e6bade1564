"""Order use cases. Each writes its state change and the event announcing it
in one transaction (the outbox), so neither exists without the other."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.database import UnitOfWork
from storefront.errors import InvalidInput
from storefront.events.envelope import Event
from storefront.events.outbox import add_events
from storefront.ids import new_id
from storefront.orders import repository
from storefront.orders.domain import (
    CANCELLABLE,
    Order,
    OrderItem,
    OrderNotCancellable,
    OrderNotFound,
    OrderPage,
    OrderQuery,
    OrderStatus,
    PlaceOrder,
    order_total,
)
from storefront.orders.events import OrderCancelled, OrderLine, OrderPlaced
from storefront.pagination import encode_cursor
from storefront.settings import Settings


async def place_order(
    request: PlaceOrder,
    engine: AsyncEngine,
    settings: Settings,
    customer_id: str | None = None,
    correlation_id: str | None = None,
) -> Order:
    async with UnitOfWork(engine) as uow:
        prices = await repository.prices_of(
            uow.connection, [item.product_id for item in request.items]
        )
        items: list[OrderItem] = []
        currencies: set[str] = set()
        for index, wanted in enumerate(request.items):
            if wanted.product_id not in prices:
                raise InvalidInput(
                    f"items.{index}.product_id", f"product {wanted.product_id} does not exist"
                )
            snapshot, currency = prices[wanted.product_id]
            items.append(snapshot.model_copy(update={"quantity": wanted.quantity}))
            currencies.add(currency)
        if len(currencies) > 1:
            raise InvalidInput("items", f"products are priced in {sorted(currencies)}; use one")
        now = datetime.now(UTC)
        order = Order(
            id=new_id(),
            status=OrderStatus.PENDING,
            items=items,
            total=order_total(items),
            currency=currencies.pop(),
            created_at=now,
            updated_at=now,
        )
        await repository.add_order(uow.connection, order, customer_id)
        placed = OrderPlaced(
            order_id=order.id,
            items=[OrderLine(**item.model_dump()) for item in items],
            total=order.total,
            currency=order.currency,
        )
        event = Event.of(placed, order.id, correlation_id=correlation_id)
        await add_events(uow.connection, [event], settings.event_partitions)
        await uow.commit()
    return order


async def cancel_order(
    order_id: UUID, engine: AsyncEngine, settings: Settings, correlation_id: str | None = None
) -> Order:
    async with UnitOfWork(engine) as uow:
        order = await repository.get_order(uow.connection, order_id, for_update=True)
        if order is None:
            raise OrderNotFound(order_id)
        if order.status not in CANCELLABLE:
            raise OrderNotCancellable(order_id, order.status)
        await repository.set_status(uow.connection, order_id, OrderStatus.CANCELLED)
        cancelled = OrderCancelled(order_id=order_id, previous_status=order.status.value)
        event = Event.of(cancelled, order_id, correlation_id=correlation_id)
        await add_events(uow.connection, [event], settings.event_partitions)
        cancelled_order = await repository.get_order(uow.connection, order_id)
        await uow.commit()
    assert cancelled_order is not None
    return cancelled_order


async def get_order(order_id: UUID, engine: AsyncEngine) -> Order:
    async with UnitOfWork(engine) as uow:
        order = await repository.get_order(uow.connection, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


async def list_orders(query: OrderQuery, engine: AsyncEngine) -> OrderPage:
    async with UnitOfWork(engine) as uow:
        found = await repository.list_orders(uow.connection, query)
    items = found[: query.limit]
    more = len(found) > query.limit
    return OrderPage(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)

"""Order use cases. Each writes its state change and the event announcing it
in one transaction (the outbox), so neither exists without the other.

Every read and cancel is scoped to the caller (:func:`owner_scope`): a customer
finds only their own orders, so another customer's answers exactly as a missing
one does, and an admin finds every order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from storefront.auth.principal import Principal
from storefront.errors import InvalidInput
from storefront.events.envelope import Event
from storefront.idempotency import IdempotencyKey
from storefront.ids import new_id
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
    owner_scope,
    scoped_to,
)
from storefront.orders.events import OrderCancelled, OrderLine, OrderPlaced
from storefront.orders.unit_of_work import OrdersUnitOfWork, Prices
from storefront.pagination import encode_cursor


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    replayed: bool = False  # answered from an earlier request with the same key


async def place_order(
    request: PlaceOrder,
    uow: OrdersUnitOfWork,
    customer_id: str,
    correlation_id: str | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> PlacedOrder:
    """The order, its items, its OrderPlaced event and its idempotency key:
    one transaction, so a retry after any crash finds all of them or none."""
    async with uow:
        if idempotency_key is not None:
            earlier = await uow.idempotency.claim(idempotency_key)
            if earlier is not None:
                return PlacedOrder(Order.model_validate(earlier.body), replayed=True)
        wanted = [(item.product_id, item.quantity) for item in request.items]
        items, currency = await priced_items(uow.prices, wanted, field="items")
        now = _now()
        order = Order(
            id=new_id(),
            customer_id=customer_id,
            status=OrderStatus.PENDING,
            items=items,
            total=order_total(items),
            currency=currency,
            created_at=now,
            updated_at=now,
        )
        await uow.orders.add(order)
        placed = OrderPlaced(
            order_id=order.id,
            items=[OrderLine(**item.model_dump()) for item in items],
            total=order.total,
            currency=order.currency,
        )
        event = Event.of(placed, order.id, correlation_id=correlation_id)
        await uow.outbox.add([event])
        if idempotency_key is not None:
            body = order.model_dump(mode="json")
            await uow.idempotency.remember(idempotency_key, 201, body)
        await uow.commit()
    return PlacedOrder(order)


async def priced_items(
    prices: Prices, wanted: Sequence[tuple[UUID, int]], *, field: str
) -> tuple[list[OrderItem], str]:
    """The wanted (product, quantity) lines at today's prices, and their one
    currency; ``field`` names the lines in errors (``items``, ``cart``)."""
    found = await prices.prices_of([product_id for product_id, _ in wanted])
    items: list[OrderItem] = []
    currencies: set[str] = set()
    for index, (product_id, quantity) in enumerate(wanted):
        if product_id not in found:
            raise InvalidInput(
                f"{field}.{index}.product_id", f"product {product_id} does not exist"
            )
        unit_price, currency = found[product_id]
        items.append(OrderItem(product_id=product_id, quantity=quantity, unit_price=unit_price))
        currencies.add(currency)
    if len(currencies) > 1:
        raise InvalidInput(field, f"products are priced in {sorted(currencies)}; use one")
    return items, currencies.pop()


async def cancel_order(
    order_id: UUID,
    caller: Principal,
    uow: OrdersUnitOfWork,
    correlation_id: str | None = None,
) -> Order:
    async with uow:
        order = await uow.orders.get(order_id, for_update=True, customer_id=owner_scope(caller))
        if order is None:
            raise OrderNotFound(order_id)
        if order.status not in CANCELLABLE:
            raise OrderNotCancellable(order_id, order.status)
        await uow.orders.set_status([order_id], OrderStatus.CANCELLED)
        cancelled = OrderCancelled(order_id=order_id, previous_status=order.status.value)
        await uow.outbox.add([Event.of(cancelled, order_id, correlation_id=correlation_id)])
        cancelled_order = await uow.orders.get(order_id)
        await uow.commit()
    assert cancelled_order is not None
    return cancelled_order


async def get_order(order_id: UUID, caller: Principal, uow: OrdersUnitOfWork) -> Order:
    async with uow:
        order = await uow.orders.get(order_id, customer_id=owner_scope(caller))
    if order is None:
        raise OrderNotFound(order_id)
    return order


async def list_orders(query: OrderQuery, caller: Principal, uow: OrdersUnitOfWork) -> OrderPage:
    query = scoped_to(query, caller)
    async with uow:
        found = await uow.orders.page(query)
    items = found[: query.limit]
    more = len(found) > query.limit
    return OrderPage(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


def _now() -> datetime:
    return datetime.now(UTC)

"""What other contexts may read of orders: read models, not its tables."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from sqlalchemy import Subquery, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.orders.domain import OrderStatus
from storefront.orders.tables import order_items, orders

__all__ = ["order_lines_view", "orders_view", "pending_orders"]


async def pending_orders(connection: AsyncConnection, order_ids: Collection[UUID]) -> set[UUID]:
    """Which of these orders are still PENDING (a read: no lock is taken)."""
    found = await connection.scalars(
        select(orders.c.id).where(
            orders.c.id.in_(list(order_ids)), orders.c.status == OrderStatus.PENDING.value
        )
    )
    return set(found)


def orders_view() -> Subquery:
    """Every order's status, currency, total and placing time, by ``order_id``."""
    return select(
        orders.c.id.label("order_id"),
        orders.c.status,
        orders.c.currency,
        orders.c.total,
        orders.c.created_at,
    ).subquery("orders_orders")


def order_lines_view() -> Subquery:
    """Every order line: ``order_id``, ``product_id``, ``quantity``, ``unit_price``."""
    return select(
        order_items.c.order_id,
        order_items.c.product_id,
        order_items.c.quantity,
        order_items.c.unit_price,
    ).subquery("orders_lines")

"""What other contexts may read of orders: read models, not its tables."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import Subquery, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.orders.domain import OrderStatus
from storefront.orders.tables import order_items, orders

__all__ = [
    "OrderLineSummary",
    "OrderSummary",
    "order_lines_view",
    "order_summary",
    "orders_view",
    "pending_orders",
    "statuses_of",
]


@dataclass(frozen=True)
class OrderLineSummary:
    product_id: UUID
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class OrderSummary:
    """What an email about an order says."""

    order_id: UUID
    customer_id: str | None
    email: str | None
    status: OrderStatus
    reason: str | None
    total: Decimal
    currency: str
    lines: tuple[OrderLineSummary, ...]


async def statuses_of(
    connection: AsyncConnection, order_ids: Collection[UUID]
) -> dict[UUID, OrderStatus]:
    """These orders' statuses, missing ones left out (a read: no lock is taken)."""
    rows = await connection.execute(
        select(orders.c.id, orders.c.status).where(orders.c.id.in_(list(order_ids)))
    )
    return {row.id: OrderStatus(row.status) for row in rows}


async def orders_overdue(connection: AsyncConnection, due_before: datetime) -> int:
    """How many orders still await a payment due before ``due_before``."""
    count = await connection.scalar(
        select(func.count())
        .select_from(orders)
        .where(
            orders.c.status == OrderStatus.AWAITING_PAYMENT.value,
            orders.c.payment_due_at < due_before,
        )
    )
    return int(count or 0)


async def order_summary(connection: AsyncConnection, order_id: UUID) -> OrderSummary | None:
    row = (await connection.execute(select(orders).where(orders.c.id == order_id))).first()
    if row is None:
        return None
    lines = await connection.execute(
        select(order_items)
        .where(order_items.c.order_id == order_id)
        .order_by(order_items.c.product_id)
    )
    return OrderSummary(
        order_id=row.id,
        customer_id=row.customer_id,
        email=row.email,
        status=OrderStatus(row.status),
        reason=row.reason,
        total=row.total,
        currency=row.currency,
        lines=tuple(
            OrderLineSummary(line.product_id, line.quantity, line.unit_price) for line in lines
        ),
    )


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

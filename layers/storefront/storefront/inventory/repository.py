"""Stock persistence on one connection (the unit of work's transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.inventory.domain import StockLevel
from storefront.inventory.tables import stock_levels, stock_reservations
from storefront.orders.tables import order_items


async def get_stock(connection: AsyncConnection, product_id: UUID) -> StockLevel:
    row = (
        await connection.execute(
            select(stock_levels).where(stock_levels.c.product_id == product_id)
        )
    ).first()
    if row is None:
        return StockLevel(product_id=product_id, on_hand=0, reserved=0)
    return StockLevel.model_validate(row._mapping)


async def lock_stock(
    connection: AsyncConnection, product_ids: Sequence[UUID]
) -> dict[UUID, StockLevel]:
    """Lock the stock rows of these products, in id order so that two orders
    locking overlapping products cannot deadlock. Missing rows count as 0."""
    rows = await connection.execute(
        select(stock_levels)
        .where(stock_levels.c.product_id.in_(product_ids))
        .order_by(stock_levels.c.product_id)
        .with_for_update()
    )
    found = {row.product_id: StockLevel.model_validate(row._mapping) for row in rows}
    return {
        product_id: found.get(product_id, StockLevel(product_id=product_id, on_hand=0, reserved=0))
        for product_id in product_ids
    }


async def set_on_hand(connection: AsyncConnection, product_id: UUID, on_hand: int) -> StockLevel:
    statement = (
        insert(stock_levels)
        .values(product_id=product_id, on_hand=on_hand)
        .on_conflict_do_update(
            index_elements=[stock_levels.c.product_id],
            set_={"on_hand": on_hand, "updated_at": func.now()},
        )
        .returning(stock_levels)
    )
    row = (await connection.execute(statement)).one()
    return StockLevel.model_validate(row._mapping)


async def add_reserved(connection: AsyncConnection, quantities: dict[UUID, int]) -> None:
    """Change reserved counts by these (signed) quantities; rows must be locked."""
    for product_id, quantity in sorted(quantities.items()):
        await connection.execute(
            update(stock_levels)
            .where(stock_levels.c.product_id == product_id)
            .values(reserved=stock_levels.c.reserved + quantity, updated_at=func.now())
        )


async def record_reservation(connection: AsyncConnection, order_id: UUID) -> None:
    await connection.execute(insert(stock_reservations).values(order_id=order_id))


async def take_reservation(connection: AsyncConnection, order_id: UUID) -> dict[UUID, int] | None:
    """Mark an order's reservation released; its quantities, or None if it holds none."""
    released = (
        await connection.execute(
            update(stock_reservations)
            .where(stock_reservations.c.order_id == order_id)
            .where(stock_reservations.c.released_at.is_(None))
            .values(released_at=func.now())
            .returning(stock_reservations.c.order_id)
        )
    ).first()
    if released is None:
        return None
    rows = await connection.execute(
        select(order_items.c.product_id, order_items.c.quantity).where(
            order_items.c.order_id == order_id
        )
    )
    return {row.product_id: row.quantity for row in rows}

"""Stock persistence on one connection: the unit of work's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import ARRAY, Integer, Update, func, literal, select, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.inventory.domain import StockLevel
from storefront.inventory.tables import stock_levels, stock_reservations

__all__ = ["SqlStockRepository"]


class SqlStockRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def get(self, product_id: UUID) -> StockLevel:
        row = (
            await self.connection.execute(
                select(stock_levels).where(stock_levels.c.product_id == product_id)
            )
        ).first()
        if row is None:
            return StockLevel(product_id=product_id, on_hand=0, reserved=0)
        return StockLevel.model_validate(row._mapping)

    async def lock(self, product_ids: Sequence[UUID]) -> dict[UUID, StockLevel]:
        """Lock the stock rows of these products, in id order so that two
        lockers of overlapping products cannot deadlock. Missing rows count as 0."""
        rows = await self.connection.execute(
            select(stock_levels)
            .where(stock_levels.c.product_id.in_(product_ids))
            .order_by(stock_levels.c.product_id)
            .with_for_update()
        )
        found = {row.product_id: StockLevel.model_validate(row._mapping) for row in rows}
        return {
            product_id: found.get(
                product_id, StockLevel(product_id=product_id, on_hand=0, reserved=0)
            )
            for product_id in product_ids
        }

    async def set_on_hand(self, product_id: UUID, on_hand: int) -> StockLevel:
        statement = (
            insert(stock_levels)
            .values(product_id=product_id, on_hand=on_hand)
            .on_conflict_do_update(
                index_elements=[stock_levels.c.product_id],
                set_={"on_hand": on_hand, "updated_at": func.now()},
            )
            .returning(stock_levels)
        )
        row = (await self.connection.execute(statement)).one()
        return StockLevel.model_validate(row._mapping)

    async def reserve(self, orders: dict[UUID, dict[UUID, int]]) -> None:
        """Reserve orders' quantities and record what each holds, in one
        statement. The stock rows must be locked."""
        total: dict[UUID, int] = {}
        for quantities in orders.values():
            for product_id, quantity in quantities.items():
                total[product_id] = total.get(product_id, 0) + quantity
        reservations = (
            insert(stock_reservations).values(
                [
                    {"order_id": order_id, "quantities": _as_json(quantities)}
                    for order_id, quantities in orders.items()
                ]
            )
        ).cte("reservations")
        await self.connection.execute(_change_reserved(total).add_cte(reservations))

    async def release(self, order_id: UUID) -> dict[UUID, int] | None:
        """Give back what an order holds (rows locked here); its quantities, or
        None when it holds nothing (rejected, or released already)."""
        quantities = await self.connection.scalar(
            update(stock_reservations)
            .where(stock_reservations.c.order_id == order_id)
            .where(stock_reservations.c.released_at.is_(None))
            .values(released_at=func.now())
            .returning(stock_reservations.c.quantities)
        )
        if quantities is None:
            return None
        held = {UUID(product_id): int(quantity) for product_id, quantity in quantities.items()}
        await self.lock(sorted(held))
        await self.connection.execute(
            _change_reserved({product_id: -quantity for product_id, quantity in held.items()})
        )
        return held


def _change_reserved(quantities: dict[UUID, int]) -> Update:
    """One UPDATE for every product, joined to the quantities as arrays."""
    product_ids, changes = zip(*sorted(quantities.items()), strict=True)
    wanted = (
        func.unnest(
            literal(list(product_ids), ARRAY(PG_UUID(as_uuid=True))),
            literal(list(changes), ARRAY(Integer)),
        )
        .table_valued("product_id", "change")
        .render_derived(name="wanted", with_types=False)
    )
    return (
        update(stock_levels)
        .where(stock_levels.c.product_id == wanted.c.product_id)
        .values(reserved=stock_levels.c.reserved + wanted.c.change, updated_at=func.now())
    )


def _as_json(quantities: dict[UUID, int]) -> dict[str, int]:
    return {str(product_id): quantity for product_id, quantity in quantities.items()}

"""Holding an order's stock at checkout: inventory's facade for the orders context.

Checkout holds stock in its own transaction, before the answer, so a customer
learns at once whether the items are there, and an order awaiting payment
always has its stock. A hold is a reservation (a ``stock_reservations`` row
and ``stock_levels.reserved``), released by the inventory worker when the
order expires, its payment fails or it is cancelled, and kept when it is paid.
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.inventory.events import Shortage
from storefront.inventory.repository import SqlStockRepository

__all__ = ["hold_stock"]


async def hold_stock(
    connection: AsyncConnection, order_id: UUID, quantities: Mapping[UUID, int]
) -> list[Shortage]:
    """Hold all of ``quantities`` for the order, or none of it: the shortages
    when some product has fewer units available (nothing is held then)."""
    stock = SqlStockRepository(connection)
    levels = await stock.lock(sorted(quantities))
    shortages = [
        Shortage(product_id=product_id, requested=quantity, available=levels[product_id].available)
        for product_id, quantity in sorted(quantities.items())
        if levels[product_id].available < quantity
    ]
    if not shortages:
        await stock.reserve({order_id: dict(quantities)})
    return shortages

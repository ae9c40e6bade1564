"""Inventory use cases for the API: read and set a product's stock."""

from __future__ import annotations

from uuid import UUID

from storefront import catalog
from storefront.inventory.domain import BelowReserved, StockChange, StockLevel
from storefront.inventory.unit_of_work import InventoryUnitOfWork


async def get_stock(product_id: UUID, uow: InventoryUnitOfWork) -> StockLevel:
    async with uow:
        if not await uow.products.exists(product_id):
            raise catalog.ProductNotFound(product_id)
        return await uow.stock.get(product_id)


async def set_stock(product_id: UUID, change: StockChange, uow: InventoryUnitOfWork) -> StockLevel:
    async with uow:
        if not await uow.products.exists(product_id):
            raise catalog.ProductNotFound(product_id)
        current = (await uow.stock.lock([product_id]))[product_id]
        if change.on_hand < current.reserved:
            raise BelowReserved(product_id, change.on_hand, current.reserved)
        level = await uow.stock.set_on_hand(product_id, change.on_hand)
        await uow.commit()
    return level

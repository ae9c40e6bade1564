"""Inventory use cases for the API: read and set a product's stock."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from storefront import catalog
from storefront.adapters.database import UnitOfWork
from storefront.inventory import repository
from storefront.inventory.domain import BelowReserved, StockChange, StockLevel


async def get_stock(product_id: UUID, engine: AsyncEngine) -> StockLevel:
    async with UnitOfWork(engine) as uow:
        if not await catalog.product_exists(uow.connection, product_id):
            raise catalog.ProductNotFound(product_id)
        return await repository.get_stock(uow.connection, product_id)


async def set_stock(product_id: UUID, change: StockChange, engine: AsyncEngine) -> StockLevel:
    async with UnitOfWork(engine) as uow:
        if not await catalog.product_exists(uow.connection, product_id):
            raise catalog.ProductNotFound(product_id)
        current = (await repository.lock_stock(uow.connection, [product_id]))[product_id]
        if change.on_hand < current.reserved:
            raise BelowReserved(product_id, change.on_hand, current.reserved)
        level = await repository.set_on_hand(uow.connection, product_id, change.on_hand)
        await uow.commit()
    return level

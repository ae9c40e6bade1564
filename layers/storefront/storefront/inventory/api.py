"""Stock routes (served by the orders function, which owns inventory); admin only."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends

from storefront.inventory import service
from storefront.inventory.domain import StockChange, StockLevel
from storefront.inventory.unit_of_work import InventoryUnitOfWork, SqlInventoryUnitOfWork
from storefront.web.authorization import StockKeeper
from storefront.web.dependencies import Engine, SettingsDep
from storefront.web.problems import documented

router = APIRouter(tags=["inventory"])


def inventory_unit_of_work(engine: Engine, settings: SettingsDep) -> InventoryUnitOfWork:
    """A unit of work on PostgreSQL, entered by the use case."""
    return SqlInventoryUnitOfWork(engine, settings)


InventoryUow = Annotated[InventoryUnitOfWork, Depends(inventory_unit_of_work)]


@router.get(
    "/products/{product_id}/stock",
    response_model=StockLevel,
    responses=documented(_404="No such product"),
)
async def get_stock(product_id: UUID, uow: InventoryUow, _: StockKeeper) -> StockLevel:
    return await service.get_stock(product_id, uow)


@router.put(
    "/products/{product_id}/stock",
    response_model=StockLevel,
    responses=documented(_404="No such product", _409="Fewer than the units reserved"),
)
async def set_stock(
    product_id: UUID, change: StockChange, uow: InventoryUow, _: StockKeeper
) -> StockLevel:
    return await service.set_stock(product_id, change, uow)

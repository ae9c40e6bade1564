"""Stock routes (served by the orders function, which owns inventory); admin only."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from storefront.inventory import service
from storefront.inventory.domain import StockChange, StockLevel
from storefront.web.authorization import StockKeeper
from storefront.web.dependencies import Engine
from storefront.web.problems import documented

router = APIRouter(tags=["inventory"])


@router.get(
    "/products/{product_id}/stock",
    response_model=StockLevel,
    responses=documented(_404="No such product"),
)
async def get_stock(product_id: UUID, engine: Engine, _: StockKeeper) -> StockLevel:
    return await service.get_stock(product_id, engine)


@router.put(
    "/products/{product_id}/stock",
    response_model=StockLevel,
    responses=documented(_404="No such product", _409="Fewer than the units reserved"),
)
async def set_stock(
    product_id: UUID, change: StockChange, engine: Engine, _: StockKeeper
) -> StockLevel:
    return await service.set_stock(product_id, change, engine)

"""Order routes: HTTP in, use case call, HTTP out."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, FastAPI, Query, Response, status

from storefront.events.api import router as events_router
from storefront.inventory.api import router as stock_router
from storefront.orders import service
from storefront.orders.domain import Order, OrderPage, OrderQuery, OrderStatus, PlaceOrder
from storefront.pagination import decode_cursor
from storefront.runtime import container_resources
from storefront.web.app import ResourcesProvider, create_api
from storefront.web.dependencies import CorrelationId, Engine, SettingsDep
from storefront.web.problems import documented

router = APIRouter(tags=["orders"])

_NOT_FOUND = documented(_404="No such order")


@router.post("/orders", status_code=status.HTTP_201_CREATED, response_model=Order)
async def place_order(
    request: PlaceOrder,
    response: Response,
    engine: Engine,
    settings: SettingsDep,
    correlation_id: CorrelationId,
) -> Order:
    order = await service.place_order(request, engine, settings, correlation_id=correlation_id)
    response.headers["Location"] = f"/orders/{order.id}"
    return order


@router.get("/orders", response_model=OrderPage)
async def list_orders(
    engine: Engine,
    settings: SettingsDep,
    status: OrderStatus | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> OrderPage:
    query = OrderQuery(
        status=status,
        after=decode_cursor(cursor) if cursor else None,
        limit=min(limit or settings.page_size_default, settings.page_size_max),
    )
    return await service.list_orders(query, engine)


@router.get("/orders/{order_id}", response_model=Order, responses=_NOT_FOUND)
async def get_order(order_id: UUID, engine: Engine) -> Order:
    return await service.get_order(order_id, engine)


@router.post(
    "/orders/{order_id}/cancel",
    response_model=Order,
    responses=_NOT_FOUND | documented(_409="The order is already rejected or cancelled"),
)
async def cancel_order(
    order_id: UUID, engine: Engine, settings: SettingsDep, correlation_id: CorrelationId
) -> Order:
    return await service.cancel_order(order_id, engine, settings, correlation_id=correlation_id)


def create_orders_app(resources: ResourcesProvider = container_resources) -> FastAPI:
    return create_api("Storefront orders", [router, stock_router, events_router], resources)

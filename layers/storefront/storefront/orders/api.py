"""Order routes: HTTP in, use case call, HTTP out.

Every route needs a bearer token; the customer is always the token's subject,
never a field of the body (the request models forbid unknown fields).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response, status

from storefront import carts
from storefront.observability import logger
from storefront.orders import checkout, service
from storefront.orders.domain import (
    Checkout,
    Order,
    OrderPage,
    OrderQuery,
    OrderStatus,
    PlaceOrder,
)
from storefront.orders.unit_of_work import OrdersUnitOfWork, SqlOrdersUnitOfWork
from storefront.pagination import decode_cursor
from storefront.resources import Resources
from storefront.text import STORABLE_TEXT
from storefront.web.authentication import Customer
from storefront.web.contract import LOCATION, REPLAYED
from storefront.web.dependencies import CorrelationId, Engine, SettingsDep, get_resources
from storefront.web.idempotency import IdempotencyKeyHeader, answered, idempotency_key_of
from storefront.web.problems import documented

router = APIRouter(tags=["orders"])


def orders_unit_of_work(engine: Engine, settings: SettingsDep) -> OrdersUnitOfWork:
    """A unit of work on PostgreSQL, entered by the use case."""
    return SqlOrdersUnitOfWork(engine, settings)


OrdersUow = Annotated[OrdersUnitOfWork, Depends(orders_unit_of_work)]

_NOT_FOUND = documented(_404="No such order")


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=Order,
    responses=documented(_409="A request with this Idempotency-Key is still in progress")
    | {201: {"description": "Placed, or the stored answer", "headers": LOCATION | REPLAYED}},
)
async def place_order(
    request: PlaceOrder,
    response: Response,
    uow: OrdersUow,
    correlation_id: CorrelationId,
    caller: Customer,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Order:
    key = idempotency_key_of(idempotency_key, caller.subject, "POST /orders", request)
    placed = await service.place_order(
        request,
        uow,
        customer_id=caller.subject,
        correlation_id=correlation_id,
        idempotency_key=key,
    )
    answered(response, f"/orders/{placed.order.id}", placed.replayed)
    return placed.order


@router.post(
    "/checkout",
    status_code=status.HTTP_201_CREATED,
    response_model=Order,
    responses=documented(
        _409="Not enough stock, over the per-customer cap, or a request with this"
        " Idempotency-Key still in progress",
        _422="Invalid input, or an empty cart",
        _503="Carts (Redis) are unreachable; retry after Retry-After seconds",
    )
    | {
        201: {
            "description": "The order, awaiting payment (or the stored answer)",
            "headers": LOCATION | REPLAYED,
        }
    },
)
async def check_out(
    request: Checkout,
    response: Response,
    uow: OrdersUow,
    resources: Annotated[Resources, Depends(get_resources)],
    correlation_id: CorrelationId,
    caller: Customer,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Order:
    """Turn the caller's cart into an order awaiting payment: its stock is held
    for ``CHECKOUT_HOLD_SECONDS``; ``payment.client_secret`` appears on the
    order (``GET /orders/{id}``) once the PaymentIntent is made."""
    settings = resources.settings
    store = carts.cart_store(resources.redis, settings)
    lines = [
        checkout.CartLine(item.product_id, item.quantity)
        for item in await carts.cart_items(caller.subject, store)
    ]
    placed = await checkout.check_out(
        request,
        lines,
        uow,
        customer_id=caller.subject,
        rules=checkout.CheckoutRules(
            hold=timedelta(seconds=settings.checkout_hold_seconds),
            max_units_per_product=settings.checkout_max_units_per_product,
        ),
        now=datetime.now(UTC),
        correlation_id=correlation_id,
        idempotency_key=idempotency_key_of(
            idempotency_key, caller.subject, "POST /checkout", request
        ),
    )
    if not placed.replayed:
        try:
            await carts.empty_cart(caller.subject, store)
        except carts.CartUnavailable:
            # The order stands; the cart keeps its lines until its TTL or the
            # customer's next change. Answering 503 would invite a second order.
            logger.warning(
                "cart not emptied after checkout", extra={"order_id": str(placed.order.id)}
            )
    answered(response, f"/orders/{placed.order.id}", placed.replayed)
    return placed.order


@router.get(
    "/orders",
    response_model=OrderPage,
    responses=documented(_403="customer_id names another customer; only admins may"),
)
async def list_orders(
    uow: OrdersUow,
    settings: SettingsDep,
    caller: Customer,
    status: OrderStatus | None = None,
    # Admins only; a customer always lists their own orders.
    customer_id: Annotated[
        str | None, Query(min_length=1, max_length=200, pattern=STORABLE_TEXT)
    ] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> OrderPage:
    query = OrderQuery(
        status=status,
        customer_id=customer_id,
        after=decode_cursor(cursor) if cursor else None,
        limit=min(limit or settings.page_size_default, settings.page_size_max),
    )
    return await service.list_orders(query, caller, uow)


@router.get("/orders/{order_id}", response_model=Order, responses=_NOT_FOUND)
async def get_order(order_id: UUID, uow: OrdersUow, caller: Customer) -> Order:
    return await service.get_order(order_id, caller, uow)


@router.post(
    "/orders/{order_id}/cancel",
    response_model=Order,
    responses=_NOT_FOUND | documented(_409="The order is already rejected or cancelled"),
)
async def cancel_order(
    order_id: UUID, uow: OrdersUow, correlation_id: CorrelationId, caller: Customer
) -> Order:
    return await service.cancel_order(order_id, caller, uow, correlation_id=correlation_id)

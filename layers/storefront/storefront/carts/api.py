"""Cart routes: HTTP in, use case call, HTTP out.

Every route needs a bearer token; the cart is always the token subject's.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response, status

from storefront.carts import service
from storefront.carts.domain import Cart, CartLimits, SetQuantity
from storefront.carts.products import CatalogProducts, Products
from storefront.carts.store import CartStore, cart_store
from storefront.resources import Resources
from storefront.web.authentication import Customer
from storefront.web.dependencies import CacheDep, Engine, SettingsDep, get_resources
from storefront.web.problems import documented

router = APIRouter(tags=["cart"])


async def store_of(resources: Annotated[Resources, Depends(get_resources)]) -> CartStore:
    return cart_store(resources.redis, resources.settings)


async def products_of(engine: Engine, cache: CacheDep) -> Products:
    return CatalogProducts(engine, cache)


async def limits_of(settings: SettingsDep) -> CartLimits:
    return CartLimits(max_lines=settings.cart_max_lines, max_quantity=settings.cart_max_quantity)


Store = Annotated[CartStore, Depends(store_of)]
CatalogReads = Annotated[Products, Depends(products_of)]
Limits = Annotated[CartLimits, Depends(limits_of)]

_UNAVAILABLE = documented(_503="Carts (Redis) are unreachable; retry after Retry-After seconds")


@router.get("/cart", response_model=Cart, responses=_UNAVAILABLE)
async def get_cart(caller: Customer, store: Store, products: CatalogReads) -> Cart:
    return await service.view_cart(caller.subject, store, products)


@router.put(
    "/cart/items/{product_id}",
    response_model=Cart,
    responses=_UNAVAILABLE
    | documented(
        _404="No such product",
        _422="Invalid input: a quantity out of bounds, or a new line past the cart's limit",
    ),
)
async def set_item_quantity(
    product_id: UUID,
    request: SetQuantity,
    caller: Customer,
    store: Store,
    products: CatalogReads,
    limits: Limits,
) -> Cart:
    return await service.set_item_quantity(
        caller.subject, product_id, request.quantity, store, products, limits
    )


@router.delete("/cart/items/{product_id}", response_model=Cart, responses=_UNAVAILABLE)
async def remove_item(
    product_id: UUID, caller: Customer, store: Store, products: CatalogReads
) -> Cart:
    return await service.remove_item(caller.subject, product_id, store, products)


@router.delete("/cart", status_code=status.HTTP_204_NO_CONTENT, responses=_UNAVAILABLE)
async def empty_cart(caller: Customer, store: Store) -> Response:
    await service.empty_cart(caller.subject, store)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


__all__ = ["router"]

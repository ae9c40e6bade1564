"""What a cart reads of the catalog, through the catalog's facade.

Whether a product exists (before a line is added) is the catalog's cached
read: a hit costs one Redis GET, a missing id is cached too, and catalog
writes put what they commit into the cache, so a product created or deleted
a moment ago is already known. A cart's names and prices are one read of the
writer, as orders price their items, so the cart shows what checkout will
charge (a replica that lags could show a price the catalog no longer asks,
or a product just created as unavailable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront import catalog
from storefront.adapters.cache import Cache
from storefront.adapters.database import UnitOfWork
from storefront.carts.domain import ProductDetails

__all__ = ["CatalogProducts", "Products"]


class Products(Protocol):
    async def check_exists(self, product_id: UUID) -> None:
        """Return if the product exists; else raise :class:`catalog.ProductNotFound`."""
        ...

    async def details_of(self, product_ids: Sequence[UUID]) -> dict[UUID, ProductDetails]:
        """Name, price and currency of each of these products that exists."""
        ...


class CatalogProducts:
    def __init__(self, engine: AsyncEngine, cache: Cache) -> None:
        self._engine = engine
        self._cache = cache

    async def check_exists(self, product_id: UUID) -> None:
        await catalog.get_product(product_id, self._engine, self._cache)

    async def details_of(self, product_ids: Sequence[UUID]) -> dict[UUID, ProductDetails]:
        if not product_ids:
            return {}
        view = catalog.products_view()
        async with UnitOfWork(self._engine) as uow:
            prices = await catalog.prices_of(uow.connection, product_ids)
            rows = await uow.connection.execute(
                select(view.c.product_id, view.c.name).where(view.c.product_id.in_(list(prices)))
            )
            names = {row.product_id: row.name for row in rows}
        return {
            product_id: ProductDetails(names[product_id], price, currency)
            for product_id, (price, currency) in prices.items()
            # Deleted between the two statements: unavailable, as it now is.
            if product_id in names
        }

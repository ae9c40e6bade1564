"""What other contexts may read of the catalog: read models, not its tables.

Orders price their lines, inventory checks that a product exists, reports
name the products they count. They do it through these functions (exported by
the package's facade), so the catalog can change its tables without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

from sqlalchemy import Subquery, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.catalog.tables import products

__all__ = ["prices_of", "product_exists", "products_view"]


def products_view() -> Subquery:
    """Every product's id, SKU and name, to join in a read query."""
    return select(products.c.id.label("product_id"), products.c.sku, products.c.name).subquery(
        "catalog_products"
    )


async def product_exists(connection: AsyncConnection, product_id: UUID) -> bool:
    return bool(await connection.scalar(select(exists().where(products.c.id == product_id))))


async def prices_of(
    connection: AsyncConnection, product_ids: Sequence[UUID]
) -> dict[UUID, tuple[Decimal, str]]:
    """The current unit price and currency of each of these products that exists."""
    rows = await connection.execute(
        select(products.c.id, products.c.price, products.c.currency).where(
            products.c.id.in_(product_ids)
        )
    )
    return {row.id: (row.price, row.currency) for row in rows}

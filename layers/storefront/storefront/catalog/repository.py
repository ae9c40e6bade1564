"""Catalog persistence on one connection (the unit of work's transaction)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.catalog.domain import (
    Category,
    DuplicateCategory,
    DuplicateSku,
    NewCategory,
    NewProduct,
    Product,
    ProductInOrders,
    ProductQuery,
    UnknownCategory,
)
from storefront.catalog.tables import categories, products
from storefront.ids import new_id


async def get_product(connection: AsyncConnection, product_id: UUID) -> Product | None:
    row = (await connection.execute(select(products).where(products.c.id == product_id))).first()
    return None if row is None else Product.model_validate(row._mapping)


async def list_products(connection: AsyncConnection, query: ProductQuery) -> list[Product]:
    """Up to ``query.limit + 1`` products after ``query.after`` in id order.

    The extra row tells the caller whether another page exists.
    """
    statement = select(products).order_by(products.c.id).limit(query.limit + 1)
    if query.after is not None:
        statement = statement.where(products.c.id > query.after)
    if query.category_id is not None:
        statement = statement.where(products.c.category_id == query.category_id)
    if query.q:
        pattern = "%" + _escape_like(query.q) + "%"
        statement = statement.where(products.c.name.ilike(pattern, escape="\\"))
    rows = await connection.execute(statement)
    return [Product.model_validate(row._mapping) for row in rows]


async def add_product(connection: AsyncConnection, new: NewProduct) -> Product:
    values = new.model_dump() | {"id": new_id()}
    try:
        row = (await connection.execute(insert(products).values(values).returning(products))).one()
    except IntegrityError as error:
        _raise_for_product_conflict(error, new.sku, new.category_id)
    return Product.model_validate(row._mapping)


async def change_product(
    connection: AsyncConnection, product_id: UUID, changes: dict[str, Any]
) -> Product | None:
    statement = (
        update(products)
        .where(products.c.id == product_id)
        .values(**changes, updated_at=func.now())
        .returning(products)
    )
    try:
        row = (await connection.execute(statement)).first()
    except IntegrityError as error:
        _raise_for_product_conflict(error, changes.get("sku"), changes.get("category_id"))
    return None if row is None else Product.model_validate(row._mapping)


async def remove_product(connection: AsyncConnection, product_id: UUID) -> bool:
    try:
        result = await connection.execute(delete(products).where(products.c.id == product_id))
    except IntegrityError as error:
        # order_items references products without a cascade, on purpose.
        if _is_violation(error, asyncpg.ForeignKeyViolationError):
            raise ProductInOrders(product_id) from error
        raise
    return bool(result.rowcount)


async def list_categories(connection: AsyncConnection) -> list[Category]:
    rows = await connection.execute(select(categories).order_by(categories.c.name))
    return [Category.model_validate(row._mapping) for row in rows]


async def get_category(connection: AsyncConnection, category_id: UUID) -> Category | None:
    row = (
        await connection.execute(select(categories).where(categories.c.id == category_id))
    ).first()
    return None if row is None else Category.model_validate(row._mapping)


async def add_category(connection: AsyncConnection, new: NewCategory) -> Category:
    statement = insert(categories).values(id=new_id(), name=new.name).returning(categories)
    try:
        row = (await connection.execute(statement)).one()
    except IntegrityError as error:
        if _is_violation(error, asyncpg.UniqueViolationError):
            raise DuplicateCategory(new.name) from error
        raise
    return Category.model_validate(row._mapping)


def _raise_for_product_conflict(
    error: IntegrityError, sku: str | None, category_id: UUID | None
) -> Any:
    if _is_violation(error, asyncpg.UniqueViolationError) and sku is not None:
        raise DuplicateSku(sku) from error
    if _is_violation(error, asyncpg.ForeignKeyViolationError) and category_id is not None:
        raise UnknownCategory(category_id) from error
    raise error


def _is_violation(error: IntegrityError, kind: type[Exception]) -> bool:
    # SQLAlchemy wraps asyncpg's error; its class sits on the adapted error's __cause__.
    return isinstance(getattr(error.orig, "__cause__", None), kind)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

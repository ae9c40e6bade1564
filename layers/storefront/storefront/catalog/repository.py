"""Catalog persistence on one connection (the unit of work's transaction)."""

from __future__ import annotations

import operator
from functools import reduce
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import (
    Double,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

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
from storefront.catalog.search import Phase, SearchQuery
from storefront.catalog.tables import PRODUCT_COLUMNS, categories, products
from storefront.ids import new_id


async def get_product(connection: AsyncConnection, product_id: UUID) -> Product | None:
    statement = select(*PRODUCT_COLUMNS).where(products.c.id == product_id)
    row = (await connection.execute(statement)).first()
    return None if row is None else Product.model_validate(row._mapping)


async def list_products(connection: AsyncConnection, query: ProductQuery) -> list[Product]:
    """Up to ``query.limit + 1`` products after ``query.after`` in id order.

    The extra row tells the caller whether another page exists.
    """
    statement = select(*PRODUCT_COLUMNS).order_by(products.c.id).limit(query.limit + 1)
    if query.after is not None:
        statement = statement.where(products.c.id > query.after)
    if query.category_id is not None:
        statement = statement.where(products.c.category_id == query.category_id)
    if query.q:
        pattern = "%" + _escape_like(query.q) + "%"
        statement = statement.where(products.c.name.ilike(pattern, escape="\\"))
    rows = await connection.execute(statement)
    return [Product.model_validate(row._mapping) for row in rows]


# The search document's configuration (storefront.catalog.tables), and
# ts_rank's weights of D, C, B and A words: a word of the name (A) counts 2.5
# times one of the description (B). ts_rank damps repeats (the n-th
# occurrence counts 1/n²), so no description outranks a name by saying a
# word over and over.
_CONFIGURATION: ColumnElement[Any] = literal_column("'simple'::regconfig")
_RANK_WEIGHTS: ColumnElement[Any] = literal_column("'{0.1, 0.2, 0.4, 1.0}'::float4[]")


async def search_words(
    connection: AsyncConnection, query: SearchQuery, limit: int
) -> list[tuple[Product, float]]:
    """Up to ``limit`` products with every word of the query, best first,
    after ``query.after`` when it is a position in this phase."""
    text_query = _text_query(query)
    rank = cast(func.ts_rank(_RANK_WEIGHTS, products.c.search, text_query), Double)
    matches = _matches(text_query)
    return await _ranked(connection, query, Phase.WORDS, rank, matches, limit)


async def search_similar(
    connection: AsyncConnection, query: SearchQuery, limit: int
) -> list[tuple[Product, float]]:
    """Up to ``limit`` products whose name has, for each word of the query
    (of three letters or more), a word like it (a typo away), best first;
    those with every word are the words phase's, not these."""
    terms = [literal(term, String) for term in query.typo_terms()]
    if not terms:
        return []
    # <<% is what the trigram index answers (pg_trgm.strict_word_similarity_threshold,
    # 0.5), one index scan per word, ANDed: a word each, not the whole query
    # against the whole name, so "leather" alone does not make every leather
    # product a candidate for "leather walet".
    similar = and_(*(term.op("<<%", is_comparison=True)(products.c.name) for term in terms))
    closeness = [func.strict_word_similarity(term, products.c.name) for term in terms]
    rank = cast(reduce(operator.add, closeness) / len(terms), Double)
    matches = similar & ~_matches(_text_query(query))
    return await _ranked(connection, query, Phase.SIMILAR, rank, matches, limit)


def _text_query(query: SearchQuery) -> ColumnElement[Any]:
    return func.to_tsquery(_CONFIGURATION, query.text_query())


def _matches(text_query: ColumnElement[Any]) -> ColumnElement[bool]:
    return products.c.search.op("@@", is_comparison=True)(text_query)


async def _ranked(
    connection: AsyncConnection,
    query: SearchQuery,
    phase: Phase,
    rank: ColumnElement[float],
    matches: ColumnElement[Any],
    limit: int,
) -> list[tuple[Product, float]]:
    ranked = rank.label("rank")
    statement = _filtered(select(*PRODUCT_COLUMNS, ranked).where(matches), query)
    after = query.after
    if after is not None and after.phase is phase:
        position = tuple_(
            bindparam("after_rank", after.rank, Double),
            bindparam("after_id", after.last_id, Uuid),
        )
        statement = statement.where(tuple_(rank, products.c.id) < position)
    statement = statement.order_by(ranked.desc(), products.c.id.desc()).limit(limit)
    rows = await connection.execute(statement)
    return [(Product.model_validate(row._mapping), row.rank) for row in rows]


def _filtered(statement: Select[Any], query: SearchQuery) -> Select[Any]:
    if query.category_id is not None:
        statement = statement.where(products.c.category_id == query.category_id)
    if query.min_price is not None:
        statement = statement.where(products.c.price >= query.min_price)
    if query.max_price is not None:
        statement = statement.where(products.c.price <= query.max_price)
    return statement


async def add_product(connection: AsyncConnection, new: NewProduct) -> Product:
    values = new.model_dump() | {"id": new_id()}
    try:
        statement = insert(products).values(values).returning(*PRODUCT_COLUMNS)
        row = (await connection.execute(statement)).one()
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
        .returning(*PRODUCT_COLUMNS)
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

"""Catalog use cases.

Reads go through the cache and return the JSON body to send (a cache hit is
served without parsing it); on a miss they load from the engine they are
given, which may be a replica that lags (the API passes the read endpoint's).
Writes run on the writer, commit first and then write the committed product
through to the cache, so the cache never holds a value the database has not
committed, and a caller reading back what it just wrote (the Location of a
new product) gets it from the cache, not from a replica that may not have it
yet. Categories are not cached, so the API reads them from the writer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storefront.adapters.cache import Cache, CacheOutcome
from storefront.adapters.database import UnitOfWork
from storefront.catalog import repository
from storefront.catalog.domain import (
    Category,
    CategoryNotFound,
    NewCategory,
    NewProduct,
    Product,
    ProductChanges,
    ProductNotFound,
    ProductPage,
    ProductQuery,
)
from storefront.catalog.search import (
    Phase,
    Position,
    SearchPage,
    SearchQuery,
    encode_search_cursor,
)
from storefront.pagination import encode_cursor

PRODUCT_LISTS = "catalog:products"


def product_cache_key(product_id: UUID) -> str:
    return f"catalog:product:{product_id}"


async def get_product(
    product_id: UUID, engine: AsyncEngine, cache: Cache
) -> tuple[bytes, CacheOutcome]:
    async def load() -> bytes | None:
        async with UnitOfWork(engine) as uow:
            product = await repository.get_product(uow.connection, product_id)
        return None if product is None else product.model_dump_json().encode()

    body, outcome = await cache.get_or_load(product_cache_key(product_id), load)
    if body is None:
        raise ProductNotFound(product_id)
    return body, outcome


async def list_products(
    query: ProductQuery, engine: AsyncEngine, cache: Cache
) -> tuple[bytes, CacheOutcome]:
    async def load() -> bytes:
        async with UnitOfWork(engine) as uow:
            found = await repository.list_products(uow.connection, query)
        items = found[: query.limit]
        more = len(found) > query.limit
        page = ProductPage(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)
        return page.model_dump_json().encode()

    return await _cached_page("", query, load, cache)


async def search_products(
    query: SearchQuery, engine: AsyncEngine, cache: Cache
) -> tuple[bytes, CacheOutcome]:
    """A page of search results, cached like the product lists (and dropped
    with them on every product write)."""

    async def load() -> bytes:
        async with UnitOfWork(engine) as uow:
            page = await search_page(uow.connection, query)
        return page.model_dump_json().encode()

    return await _cached_page("search:", query, load, cache)


async def _cached_page(
    kind: str, query: BaseModel, load: Callable[[], Awaitable[bytes]], cache: Cache
) -> tuple[bytes, CacheOutcome]:
    """A page of products, cached by its query; ``kind`` tells a search's
    pages ("search:") from the list's ("") under one namespace.

    Writes bump the namespace version: every cached page becomes unreachable
    at once, with no key scan. A page is cached under the version read BEFORE
    it is loaded, so a page loaded from pre-write rows can only land under a
    version that is already dead.
    """
    version = await cache.namespace_version(PRODUCT_LISTS)
    if version is None:
        return await load(), CacheOutcome.BYPASS
    digest = hashlib.sha256(query.model_dump_json().encode()).hexdigest()[:32]
    name = f"{PRODUCT_LISTS}:v{version}:{kind}{digest}"
    body, outcome = await cache.get_or_load(name, load, cache.list_ttl_seconds)
    assert body is not None, "a page of products is never cached as missing"
    return body, outcome


async def search_page(connection: AsyncConnection, query: SearchQuery) -> SearchPage:
    """Word matches, then similar names, each phase one query; similar names
    only when the words found fewer than a page in all (so on page 1)."""
    limit, after = query.limit, query.after
    found: list[tuple[Product, float, Phase]] = []
    if after is None or after.phase is Phase.WORDS:
        words = await repository.search_words(connection, query, limit + 1)
        found = [(product, rank, Phase.WORDS) for product, rank in words]
    if (after is None and len(found) < limit) or (after and after.phase is Phase.SIMILAR):
        similar = await repository.search_similar(connection, query, limit + 1 - len(found))
        found += [(product, rank, Phase.SIMILAR) for product, rank in similar]
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        product, rank, phase = page[-1]
        position = Position(phase=phase, rank=rank, last_id=product.id)
        next_cursor = encode_search_cursor(position, query)
    return SearchPage(
        items=[product for product, _, _ in page],
        next_cursor=next_cursor,
        word_matches=sum(phase is Phase.WORDS for _, _, phase in page),
    )


async def create_product(new: NewProduct, engine: AsyncEngine, cache: Cache) -> Product:
    async with UnitOfWork(engine) as uow:
        product = await repository.add_product(uow.connection, new)
        await uow.commit()
    await _remember(product.id, product, cache)
    return product


async def update_product(
    product_id: UUID, changes: ProductChanges, engine: AsyncEngine, cache: Cache
) -> Product:
    fields = changes.changed_fields()
    async with UnitOfWork(engine) as uow:
        product = await repository.change_product(uow.connection, product_id, fields)
        if product is None:
            raise ProductNotFound(product_id)
        await uow.commit()
    await _remember(product_id, product, cache)
    return product


async def delete_product(product_id: UUID, engine: AsyncEngine, cache: Cache) -> None:
    async with UnitOfWork(engine) as uow:
        if not await repository.remove_product(uow.connection, product_id):
            raise ProductNotFound(product_id)
        await uow.commit()
    await _remember(product_id, None, cache)


async def list_categories(engine: AsyncEngine) -> list[Category]:
    async with UnitOfWork(engine) as uow:
        return await repository.list_categories(uow.connection)


async def get_category(category_id: UUID, engine: AsyncEngine) -> Category:
    async with UnitOfWork(engine) as uow:
        category = await repository.get_category(uow.connection, category_id)
    if category is None:
        raise CategoryNotFound(category_id)
    return category


async def create_category(new: NewCategory, engine: AsyncEngine) -> Category:
    async with UnitOfWork(engine) as uow:
        category = await repository.add_category(uow.connection, new)
        await uow.commit()
    return category


async def _remember(product_id: UUID, product: Product | None, cache: Cache) -> None:
    """After a commit: the product as committed (None: deleted) replaces the
    cached one, and every cached list page goes."""
    body = None if product is None else product.model_dump_json().encode()
    await cache.put(product_cache_key(product_id), body)
    await cache.bump_namespace(PRODUCT_LISTS)

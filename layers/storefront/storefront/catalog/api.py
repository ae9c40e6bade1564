"""Catalog routes: HTTP in, use case call, HTTP out. No business rules here.

Product reads load their cache misses from the read endpoint (``ReadEngine``):
writes put the committed product into the cache, so a replica that lags never
answers for what a caller has just written. Categories have no cache, so they
are read from the writer: a new category's Location must answer at once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from storefront.adapters.cache import version_name
from storefront.catalog import service
from storefront.catalog.domain import (
    Category,
    NewCategory,
    NewProduct,
    Product,
    ProductChanges,
    ProductPage,
    ProductQuery,
)
from storefront.catalog.search import (
    MAX_QUERY_LENGTH,
    SearchPage,
    SearchQuery,
    check_price_range,
    decode_search_cursor,
    search_terms,
)
from storefront.money import MONEY_PATTERN
from storefront.pagination import decode_cursor
from storefront.text import STORABLE_TEXT
from storefront.web.authorization import CatalogWriter
from storefront.web.contract import CONDITIONAL_READ, LOCATION
from storefront.web.dependencies import CacheDep, Engine, ReadEngine, SettingsDep, resources_of
from storefront.web.http_cache import cached_json
from storefront.web.problems import documented
from storefront.web.rate_limits import reads_ahead

_NOT_FOUND = documented(_404="No such product")
_CONFLICT = documented(_409="A product or category with that key exists")
_CREATED: dict[int | str, dict[str, Any]] = {201: {"description": "Created", "headers": LOCATION}}

router = APIRouter(tags=["catalog"])


@router.get("/products", response_model=ProductPage, openapi_extra=CONDITIONAL_READ)
@reads_ahead(lambda _: [version_name(service.PRODUCT_LISTS)])
async def list_products(
    request: Request,
    engine: ReadEngine,
    cache: CacheDep,
    settings: SettingsDep,
    category_id: UUID | None = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            pattern=STORABLE_TEXT,
            description=(
                "Products whose name contains this text (case-insensitive), in id order."
                " For a shopper's search, ranked, use GET /products/search."
            ),
        ),
    ] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    query = ProductQuery(
        category_id=category_id,
        q=q,
        after=decode_cursor(cursor) if cursor else None,
        limit=min(limit or settings.page_size_default, settings.page_size_max),
    )
    body, outcome = await service.list_products(query, engine, cache)
    return cached_json(request, body, outcome, settings.http_cache_max_age)


_MONEY_QUERY = {"pattern": MONEY_PATTERN, "examples": ["12.50"]}


# Before /products/{product_id}: the first route whose path matches answers.
@router.get(
    "/products/search",
    response_model=SearchPage,
    openapi_extra=CONDITIONAL_READ,
)
@reads_ahead(lambda _: [version_name(service.PRODUCT_LISTS)])
async def search_products(
    request: Request,
    engine: ReadEngine,
    cache: CacheDep,
    settings: SettingsDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_QUERY_LENGTH,
            pattern=STORABLE_TEXT,
            description=(
                "What the shopper typed. Every word must match the name or the"
                " description; the last word also matches as a prefix when q ends"
                " with it (no trailing space). Fewer word matches than a page adds"
                " products with a similar name (typo tolerance) after them."
            ),
            examples=["leather wal"],
        ),
    ],
    category_id: UUID | None = None,
    min_price: Annotated[
        str | None, Query(description="Lowest price, inclusive", **_MONEY_QUERY)
    ] = None,
    max_price: Annotated[
        str | None, Query(description="Highest price, inclusive", **_MONEY_QUERY)
    ] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[
        str | None, Query(max_length=64, description="next_cursor of the previous page")
    ] = None,
) -> Response:
    """Products ranked by relevance: a match in the name above one in the
    description; keyset pages over (rank, id)."""
    terms, prefix = search_terms(q)
    low = None if min_price is None else Decimal(min_price)
    high = None if max_price is None else Decimal(max_price)
    check_price_range(low, high)
    query = SearchQuery(
        terms=terms,
        prefix=prefix,
        category_id=category_id,
        min_price=low,
        max_price=high,
        limit=min(limit or settings.page_size_default, settings.page_size_max),
    )
    if cursor:
        query = query.model_copy(update={"after": decode_search_cursor(cursor, query)})
    body, outcome = await service.search_products(query, engine, cache)
    return cached_json(request, body, outcome, settings.http_cache_max_age)


@router.get(
    "/products/{product_id}",
    response_model=Product,
    responses=_NOT_FOUND,
    openapi_extra=CONDITIONAL_READ,
)
@reads_ahead(lambda path: [service.product_cache_key(UUID(path["product_id"]))])
async def get_product(product_id: UUID, request: Request) -> Response:
    # The API's hottest read (a cache hit, one Redis round trip) takes its
    # collaborators from the request rather than through three dependencies.
    resources = resources_of(request)
    body, outcome = await service.get_product(product_id, resources.read_engine, resources.cache)
    return cached_json(request, body, outcome, resources.settings.http_cache_max_age)


@router.post(
    "/products",
    status_code=status.HTTP_201_CREATED,
    response_model=Product,
    responses=_CONFLICT | _CREATED,
)
async def create_product(
    new: NewProduct, response: Response, engine: Engine, cache: CacheDep, _: CatalogWriter
) -> Product:
    product = await service.create_product(new, engine, cache)
    response.headers["Location"] = f"/products/{product.id}"
    return product


@router.patch("/products/{product_id}", response_model=Product, responses=_NOT_FOUND | _CONFLICT)
async def update_product(
    product_id: UUID, changes: ProductChanges, engine: Engine, cache: CacheDep, _: CatalogWriter
) -> Product:
    return await service.update_product(product_id, changes, engine, cache)


@router.delete(
    "/products/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_NOT_FOUND | documented(_409="The product is in orders; it stays"),
)
async def delete_product(
    product_id: UUID, engine: Engine, cache: CacheDep, _: CatalogWriter
) -> Response:
    await service.delete_product(product_id, engine, cache)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/categories", response_model=list[Category])
async def list_categories(engine: Engine) -> list[Category]:
    return await service.list_categories(engine)


@router.get(
    "/categories/{category_id}",
    response_model=Category,
    responses=documented(_404="No such category"),
)
async def get_category(category_id: UUID, engine: Engine) -> Category:
    return await service.get_category(category_id, engine)


@router.post(
    "/categories",
    status_code=status.HTTP_201_CREATED,
    response_model=Category,
    responses=_CONFLICT | _CREATED,
)
async def create_category(
    new: NewCategory, response: Response, engine: Engine, _: CatalogWriter
) -> Category:
    category = await service.create_category(new, engine)
    response.headers["Location"] = f"/categories/{category.id}"
    return category


__all__ = ["router"]

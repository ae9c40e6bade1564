"""Benchmark 7: a product search at 100,000 products, against page 1 of the list.

Subject: what ``GET /products/search`` runs on a cache miss
(:func:`storefront.catalog.service.search_page`: the ranked word query, and
the similar-name query when the words find fewer than a page) for queries a
shopper types: two words, the last one a prefix. Reference: page 1 of the
plain list (:func:`storefront.catalog.repository.list_products`, what
``GET /products`` runs on a miss), in the same run, interleaved. Target:
search p50 <= 2 x page 1 p50. Three more figures, without a target: a single
broad word, its second page (the keyset predicate), and a typo that only
similar names answer.

The catalog is generated (:mod:`.catalog_text`): brands, materials, product
nouns and descriptions that mention other products, so words are shared the
way a shop's are, and loaded in bulk (:func:`_seed_catalog`). The EXPLAIN of
the subject's statements is printed, and the run fails unless they use the
GIN indexes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.database import UnitOfWork, create_engine
from storefront.catalog import repository, service
from storefront.catalog.domain import ProductQuery
from storefront.catalog.search import SearchQuery, decode_search_cursor, search_terms
from storefront.ids import new_id
from storefront_dev.bench.catalog_text import CATEGORIES, generate_products
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.measure import Figure, Report, interleaved_async, median

__all__ = ["bench_search"]

PAGE_SIZE = 20
TARGET = 2.0
# What shoppers type: a material or brand and a product, the last word as
# typed so far (a prefix). Rotated, so no one query's luck decides the figure.
QUERIES = (
    "leather wallet",
    "merino scarf",
    "copper kettle",
    "walnut cutting bo",
    "stoneware mug",
    "canvas backpack",
    "linen throw",
    "fjordline boots",
    "cast iron wok",
    "porcelain bowl",
)
BROAD = "wallet"
TYPO = "lether walet"


def _query(text: str) -> SearchQuery:
    terms, prefix = search_terms(text)
    return SearchQuery(terms=terms, prefix=prefix, limit=PAGE_SIZE)


async def _seed_catalog(connection: asyncpg.Connection, rows: int) -> None:
    categories = {name: new_id() for name in CATEGORIES}
    await connection.executemany(
        "INSERT INTO categories (id, name) VALUES ($1, $2)",
        [(category_id, name) for name, category_id in categories.items()],
    )
    await connection.copy_records_to_table(
        "products",
        columns=["id", "sku", "name", "description", "price", "currency", "category_id"],
        records=(
            (new_id(), p.sku, p.name, p.description, p.price, "EUR", categories[p.category])
            for p in generate_products(rows)
        ),
    )
    # VACUUM merges what the GIN indexes' pending lists still hold, as
    # autovacuum does on a live database.
    await connection.execute("VACUUM ANALYZE products")


@contextmanager
def _statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """The product statements the engine sends while the block runs, with their arguments."""
    sent: list[tuple[str, Any]] = []

    def record(conn: object, cursor: object, statement: str, parameters: Any, *_: object) -> None:
        if "FROM products" in statement:
            sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _plans(engine: AsyncEngine, admin: asyncpg.Connection, query: SearchQuery) -> list[str]:
    with _statements(engine) as sent:
        async with UnitOfWork(engine) as uow:
            await service.search_page(uow.connection, query)
    return [
        "\n".join(row[0] for row in await admin.fetch("EXPLAIN " + sql, *arguments))
        for sql, arguments in sent
    ]


def _index_lines(plan: str) -> str:
    return "; ".join(
        line.strip().removeprefix("->  ")
        for line in plan.splitlines()
        if "Index" in line or "Scan on" in line
    )


async def _timed_list(engine: AsyncEngine) -> float:
    started = time.perf_counter()
    async with UnitOfWork(engine) as uow:
        found = await repository.list_products(uow.connection, ProductQuery(limit=PAGE_SIZE))
    elapsed = (time.perf_counter() - started) * 1000
    if len(found) != PAGE_SIZE + 1:
        raise RuntimeError(f"a page of {len(found)} rows")
    return elapsed


async def _timed_search(engine: AsyncEngine, query: SearchQuery) -> float:
    started = time.perf_counter()
    async with UnitOfWork(engine) as uow:
        page = await service.search_page(uow.connection, query)
    elapsed = (time.perf_counter() - started) * 1000
    if not page.items:
        raise RuntimeError(f"nothing found for {query.terms}")
    return elapsed


async def _second_page(engine: AsyncEngine, query: SearchQuery) -> SearchQuery:
    async with UnitOfWork(engine) as uow:
        first = await service.search_page(uow.connection, query)
    if first.next_cursor is None:
        raise RuntimeError(f"{query.terms} found a single page")
    return query.model_copy(update={"after": decode_search_cursor(first.next_cursor, query)})


async def _match_counts(engine: AsyncEngine, queries: list[SearchQuery]) -> list[int]:
    async with UnitOfWork(engine) as uow:
        return [
            len(await repository.search_words(uow.connection, query, 1_000_000))
            for query in queries
        ]


async def bench_search(env: BenchEnvironment, report: Report, *, rows: int, requests: int) -> None:
    admin = await asyncpg.connect(env.database_url)
    engine = create_engine(env.settings)
    try:
        await _seed_catalog(admin, rows)
        queries = [_query(text) for text in QUERIES]
        rotation = itertools.cycle(queries)
        broad, typo = _query(BROAD), _query(TYPO)
        second = await _second_page(engine, broad)
        runs: dict[str, Callable[[], Awaitable[float]]] = {
            "list": lambda: _timed_list(engine),
            "search": lambda: _timed_search(engine, next(rotation)),
            "broad": lambda: _timed_search(engine, broad),
            "second": lambda: _timed_search(engine, second),
            "typo": lambda: _timed_search(engine, typo),
        }
        for _ in range(20):  # warm: plans, pool, caches
            for run in runs.values():
                await run()
        samples = await interleaved_async(runs, requests)
        matches = await _match_counts(engine, queries)
        words_plan = (await _plans(engine, admin, queries[0]))[0]
        similar_plan = (await _plans(engine, admin, typo))[-1]
    finally:
        await admin.execute("TRUNCATE products, categories CASCADE")
        await admin.close()
        await engine.dispose()

    _check_index_use(words_plan, "ix_products_search")
    _check_index_use(similar_plan, "ix_products_name_trgm")
    _add_figures(report, samples, rows, requests)
    report.notes.append(
        f"7 search: queries {', '.join(repr(text) for text in QUERIES)} have"
        f" {min(matches):,} to {max(matches):,} word matches each (median"
        f" {int(median(matches)):,}), every one ranked for page 1."
        f" Word query: {_index_lines(words_plan)}."
        f" Similar-name query: {_index_lines(similar_plan)}."
    )
    print(f"7 search, EXPLAIN of the word query for {QUERIES[0]!r}:\n{words_plan}")
    print(f"7 search, EXPLAIN of the similar-name query for {TYPO!r}:\n{similar_plan}")


def _check_index_use(plan: str, index: str) -> None:
    if f"Index Scan on {index}" not in plan:
        raise RuntimeError(f"7 search: the plan does not use {index}:\n{plan}")


def _add_figures(report: Report, samples: dict[str, list[float]], rows: int, requests: int) -> None:
    reference = median(samples["list"])
    catalog = f"{rows:,} products"
    labels = {
        "search": f"two words, the last a prefix ({catalog})",
        "broad": f"one broad word, {BROAD!r} ({catalog})",
        "second": f"page 2 of {BROAD!r} ({catalog})",
        "typo": f"a typo, {TYPO!r}: similar names ({catalog})",
    }
    for name, label in labels.items():
        report.add(
            Figure(
                "7 search",
                label,
                median(samples[name]),
                "ms",
                reference="list page 1",
                reference_value=reference,
                target=TARGET if name == "search" else None,
                samples=requests,
            )
        )

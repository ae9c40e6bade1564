"""Benchmark 6: a keyset page 100k rows deep, against page 1.

Both are the catalog's own page query (:func:`storefront.catalog.repository.
list_products`, what ``GET /products`` runs on a cache miss) on a catalog of
``rows`` products: page 1 has no cursor, the deep page starts after the
``depth``-th id. Keyset pagination should not care how deep the page is; an
OFFSET would read and throw away every row before it.
"""

from __future__ import annotations

import time
from uuid import UUID

import asyncpg

from storefront.adapters.database import UnitOfWork, create_engine
from storefront.catalog import repository
from storefront.catalog.domain import ProductQuery
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.measure import Figure, Report, interleaved_async, median

__all__ = ["bench_pagination"]

PAGE_SIZE = 20


async def _seed_catalog(connection: asyncpg.Connection, rows: int) -> None:
    await connection.execute(
        """
        INSERT INTO products (id, sku, name, price, currency)
        SELECT gen_random_uuid(), 'page-' || n, 'Paged product ' || n, 9.99, 'EUR'
        FROM generate_series(1, $1) AS n
        """,
        rows,
    )
    await connection.execute("ANALYZE products")


async def bench_pagination(
    env: BenchEnvironment, report: Report, *, rows: int, depth: int, requests: int
) -> None:
    admin = await asyncpg.connect(env.database_url)
    engine = create_engine(env.settings)
    try:
        await _seed_catalog(admin, rows)
        after: UUID = await admin.fetchval(
            "SELECT id FROM products ORDER BY id OFFSET $1 LIMIT 1", depth - 1
        )

        def page(cursor: UUID | None) -> ProductQuery:
            return ProductQuery(after=cursor, limit=PAGE_SIZE)

        async def timed(query: ProductQuery) -> float:
            started = time.perf_counter()
            async with UnitOfWork(engine) as uow:
                found = await repository.list_products(uow.connection, query)
            elapsed = (time.perf_counter() - started) * 1000
            if len(found) != PAGE_SIZE + 1:
                raise RuntimeError(f"a page of {len(found)} rows")
            return elapsed

        first, deep = page(None), page(after)
        for _ in range(20):  # warm: plans, pool, caches
            await timed(first)
            await timed(deep)
        samples = await interleaved_async(
            {"first": lambda: timed(first), "deep": lambda: timed(deep)}, requests
        )
    finally:
        await admin.execute("TRUNCATE products CASCADE")
        await admin.close()
        await engine.dispose()
    report.add(
        Figure(
            "6 keyset page",
            f"page {depth:,} rows deep ({rows:,} products)",
            median(samples["deep"]),
            "ms",
            reference="page 1",
            reference_value=median(samples["first"]),
            target=1.2,
            samples=requests,
        )
    )

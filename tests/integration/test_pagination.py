"""Keyset pagination: every row once, and a deep page as cheap as the first."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from sqlalchemy import text

from storefront.pagination import encode_cursor
from storefront.resources import Resources
from tests.integration.conftest import counting_queries, create_product


async def walk(client: httpx.AsyncClient, limit: int, between_pages: object = None) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        params: Mapping[str, str | int] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/products", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        if callable(between_pages):
            await between_pages()


async def test_walk_returns_each_product_once_while_rows_are_inserted(
    client: httpx.AsyncClient,
) -> None:
    originals = [(await create_product(client, sku=f"P{n:03}"))["id"] for n in range(40)]
    inserted = 0

    async def insert_one() -> None:
        nonlocal inserted
        inserted += 1
        await create_product(client, sku=f"NEW{inserted:03}")

    seen = await walk(client, limit=7, between_pages=insert_one)

    assert len(seen) == len(set(seen)), "a product was returned twice"
    assert set(originals) <= set(seen), "a product that existed throughout was skipped"
    assert seen == sorted(seen, key=lambda id_: originals.index(id_) if id_ in originals else 99)


async def test_last_page_has_no_cursor(client: httpx.AsyncClient) -> None:
    for number in range(4):
        await create_product(client, sku=f"S{number}")
    first = (await client.get("/products", params={"limit": 2})).json()
    second = (
        await client.get("/products", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()

    assert first["next_cursor"] is not None
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None


async def test_a_page_deep_in_100k_rows_uses_the_index(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    async with resources.engine.begin() as connection:
        # 100,000 rows into the search indexes too (the search document's and
        # the names' trigrams) take about as long as the API's statement timeout.
        await connection.execute(text("SET LOCAL statement_timeout = 0"))
        await connection.execute(
            text(
                "INSERT INTO products (id, sku, name, price, currency) "
                "SELECT gen_random_uuid(), 'SKU-' || n, 'Product ' || n, 9.99, 'EUR' "
                "FROM generate_series(1, 100000) AS n"
            )
        )
        await connection.execute(text("ANALYZE products"))
        ordered = (await connection.execute(text("SELECT id FROM products ORDER BY id"))).all()
    ids = [str(row.id) for row in ordered]
    deep = 99_990

    with counting_queries(resources.engine) as queries:
        page = await client.get(
            "/products", params={"limit": 5, "cursor": encode_cursor(ordered[deep - 1].id)}
        )

    assert page.status_code == 200
    assert [item["id"] for item in page.json()["items"]] == ids[deep : deep + 5]
    statement = next(sql for sql in queries.statements if "FROM products" in sql)
    async with resources.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert raw.driver_connection is not None
        plan = "\n".join(
            row[0]
            for row in await raw.driver_connection.fetch(
                "EXPLAIN " + statement, ordered[deep - 1].id, 6
            )
        )
    assert "Index Scan using pk_products" in plan
    assert "Sort" not in plan
    assert "Seq Scan" not in plan

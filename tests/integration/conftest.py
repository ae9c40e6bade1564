"""Integration fixtures: the catalog app over ASGI on the session's real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront import wiring
from storefront.resources import Resources


@pytest.fixture(scope="session")
def app(resources: Resources) -> FastAPI:
    return wiring.catalog_app(lambda: resources)


@asynccontextmanager
async def asgi_client(
    app: FastAPI, headers: Mapping[str, str] | None = None, *, ip: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` over ASGI from ``ip``, sending ``headers`` (a token)
    on every request."""
    transport = httpx.ASGITransport(app=app, client=(ip, 123))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as client:
        yield client


@pytest.fixture
async def client(app: FastAPI, admin_headers: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The catalog app, as an admin: most tests are about the API, not who calls it."""
    async with asgi_client(app, admin_headers) as client:
        yield client


@pytest.fixture(scope="session")
def orders_app(resources: Resources) -> FastAPI:
    return wiring.orders_app(lambda: resources)


@pytest.fixture
async def orders_client(
    orders_app: FastAPI, admin_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """The orders app, as an admin."""
    async with asgi_client(orders_app, admin_headers) as client:
        yield client


@pytest.fixture(autouse=True)
async def empty_catalog(resources: Resources, redis_key_prefix: str) -> None:
    """Every test starts with no catalog, orders or events, and an empty cache."""
    async with resources.engine.begin() as connection:
        await connection.execute(
            text(
                "TRUNCATE products, categories, orders, outbox, event_partitions,"
                " consumer_positions, dead_letters CASCADE"
            )
        )
    keys = [key async for key in resources.redis.scan_iter(match=f"{redis_key_prefix}*")]
    if keys:
        await resources.redis.delete(*keys)


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def count(self, fragment: str) -> int:
        return sum(fragment in statement for statement in self.statements)


@contextmanager
def counting_queries(engine: AsyncEngine) -> Iterator[QueryCounter]:
    """Counts the SQL statements the engine sends while the block runs."""
    counter = QueryCounter()

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        counter.statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield counter
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def create_product(client: httpx.AsyncClient, **fields: object) -> dict[str, object]:
    body = {"sku": "MUG-1", "name": "Mug", "price": "12.50"} | fields
    response = await client.post("/products", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created

"""A cached read costs one Redis round trip, the rate limiter's included.

The limiter's script reads the route's cache keys itself (a pipeline on Redis
Cluster: storefront.web.rate_limits, "One round trip for a cache hit"); a caller over
its limit is answered 429 before the route runs, so PostgreSQL never sees it.
Round trips are counted where redis-py writes to the socket: one write per
command, or per pipeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx
import pytest
from redis.asyncio.connection import AbstractConnection

from storefront import wiring
from storefront.catalog.service import product_cache_key
from storefront.resources import Resources
from storefront.settings import Settings
from tests.integration.conftest import asgi_client, counting_queries, create_product


@contextmanager
def counting_round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the writes redis-py makes to its sockets while the block runs."""
    sent: list[int] = []
    write = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        sent.append(1)
        await write(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(AbstractConnection, "send_packed_command", counted)
        yield sent


async def test_a_cache_hit_costs_one_redis_round_trip(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = await create_product(client)
    path = f"/products/{product['id']}"
    await client.get(path)  # the cache holds it now, whatever the write left

    with counting_round_trips(monkeypatch) as sent:
        hit = await client.get(path)

    assert (hit.status_code, hit.headers["x-cache"]) == (200, "hit")
    assert hit.headers["ratelimit-remaining"]  # the limiter did count it
    assert len(sent) == 1


async def test_a_cached_list_page_reads_its_version_ahead(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_product(client)
    await client.get("/products")

    with counting_round_trips(monkeypatch) as sent:
        hit = await client.get("/products")

    assert (hit.status_code, hit.headers["x-cache"]) == (200, "hit")
    # The limiter with the list's version, then the page under that version.
    assert len(sent) == 2


async def test_a_key_that_cannot_be_read_does_not_cost_the_limiter(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    product = await create_product(client)
    key = resources.cache.key_of(product_cache_key(UUID(str(product["id"]))))
    await resources.redis.delete(key)
    await resources.redis.hset(key, "not", "a string")  # GET answers WRONGTYPE

    answer = await client.get(f"/products/{product['id']}")

    # The limiter's count stands (its script does not fail with the GET) and
    # the route reads the product without the cache.
    assert answer.status_code == 200
    assert answer.json()["id"] == product["id"]
    assert answer.headers["ratelimit-remaining"]
    await resources.redis.delete(key)


async def test_a_malformed_id_reads_nothing_ahead_and_is_refused(client: httpx.AsyncClient) -> None:
    refused = await client.get("/products/not-a-uuid")

    assert refused.status_code == 422
    assert refused.headers["ratelimit-remaining"]


@pytest.fixture
async def one_read_a_minute(settings: Settings) -> AsyncIterator[Resources]:
    limits = {"rate_limit_read": "1/minute", "rate_limit_anonymous": "1/minute"}
    resources = Resources.from_settings(settings.model_copy(update=limits))
    yield resources
    await resources.close()


async def test_a_caller_over_its_limit_never_reaches_postgresql(
    client: httpx.AsyncClient, one_read_a_minute: Resources
) -> None:
    first = await create_product(client, sku="MUG-1")
    second = await create_product(client, sku="MUG-2")
    await one_read_a_minute.cache.invalidate(
        *(product_cache_key(UUID(str(p["id"]))) for p in (first, second))
    )
    catalog = wiring.catalog_app(lambda: one_read_a_minute)

    async with asgi_client(catalog) as anonymous:
        with counting_queries(one_read_a_minute.engine) as allowed_queries:
            allowed = await anonymous.get(f"/products/{first['id']}")
        with counting_queries(one_read_a_minute.engine) as refused_queries:
            refused = await anonymous.get(f"/products/{second['id']}")

    assert (allowed.status_code, allowed.headers["x-cache"]) == (200, "miss")
    assert allowed_queries.statements  # an uncached read does reach PostgreSQL
    assert refused.status_code == 429
    assert refused.headers["retry-after"]
    assert refused_queries.statements == []

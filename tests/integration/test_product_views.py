"""Product views: counted in Redis, ranked, and flushed to PostgreSQL exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from storefront import wiring
from storefront.analytics import counters, flush, repository
from storefront.analytics.counters import ViewKeys
from storefront.analytics.flush import flush_views
from storefront.ids import new_id
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.embedded import EmbeddedRedis, start_redis
from tests.integration.conftest import asgi_client, counting_queries, create_product

VIEWS = 100


@pytest.fixture(autouse=True)
async def no_views(resources: Resources) -> None:
    async with resources.engine.begin() as connection:
        await connection.execute(text("TRUNCATE product_views_daily, view_flush_batches"))


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The catalog app without a token, as a shopper's browser calls it."""
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
async def shoppers(app: FastAPI) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Anonymous shoppers, each from an address of their own: a caller's
    views of a product count once per window."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(asgi_client(app, ip=f"10.0.{n // 256}.{n % 256}"))
            for n in range(VIEWS)
        ]


async def view_by_many(
    shoppers: list[httpx.AsyncClient], product_id: str, views: int
) -> list[httpx.Response]:
    return [await shopper.post(f"/products/{product_id}/views") for shopper in shoppers[:views]]


async def flushed(resources: Resources) -> dict[str, int]:
    async with resources.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT product_id, sum(views) FROM product_views_daily GROUP BY 1")
        )
        return {str(product_id): int(views) for product_id, views in rows}


async def products(client: httpx.AsyncClient, count: int) -> list[str]:
    return [str((await create_product(client, sku=f"V-{n}"))["id"]) for n in range(count)]


async def test_views_rank_products_by_popularity(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, shoppers: list[httpx.AsyncClient]
) -> None:
    mug, tea, pot = await products(client, 3)
    for product_id, views in ((tea, 5), (pot, 3), (mug, 1)):
        for answer in await view_by_many(shoppers, product_id, views):
            assert answer.status_code == 202
            assert "ratelimit-remaining" in answer.headers  # metered like any write

    popular = await anonymous.get("/products/popular", params={"window": "7d", "limit": 2})

    assert popular.status_code == 200
    assert popular.json() == {
        "window": "7d",
        "source": "redis",
        "items": [{"product_id": tea, "views": 5}, {"product_id": pot, "views": 3}],
    }


async def test_a_caller_counts_once_per_product_per_window(
    client: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    app: FastAPI,
    customer_headers: Callable[[str], dict[str, str]],
    resources: Resources,
) -> None:
    mug, tea = await products(client, 2)
    answers = [await anonymous.post(f"/products/{mug}/views") for _ in range(25)]
    answers.append(await anonymous.post(f"/products/{tea}/views"))
    # One customer from two addresses is one caller: the subject decides.
    for ip in ("10.1.0.1", "10.1.0.2"):
        async with asgi_client(app, customer_headers("alice"), ip=ip) as customer:
            answers.append(await customer.post(f"/products/{tea}/views"))
    await flush_views(resources.engine, resources.redis, resources.settings)

    assert {answer.status_code for answer in answers} == {202}
    assert await flushed(resources) == {mug: 1, tea: 2}
    prefix = resources.settings.redis_key_prefix
    seen = [key async for key in resources.redis.scan_iter(match=f"{prefix}{{views}}:seen:*")]
    assert len(seen) == 3
    window = resources.settings.views_dedupe_seconds
    ttls = [await resources.redis.ttl(key) for key in seen]
    assert all(0 < ttl <= window for ttl in ttls)


async def test_an_unknown_product_is_404_without_a_query_per_view(
    anonymous: httpx.AsyncClient, resources: Resources
) -> None:
    missing = uuid.uuid4()

    with counting_queries(resources.engine) as queries:
        answers = [await anonymous.post(f"/products/{missing}/views") for _ in range(30)]

    assert {answer.status_code for answer in answers} == {404}
    assert queries.count("FROM products") == 1  # then the negative cache answers
    assert answers[0].headers["content-type"] == "application/problem+json"


async def test_concurrent_views_survive_killed_and_overlapping_flushes_exactly_once(
    client: httpx.AsyncClient,
    shoppers: list[httpx.AsyncClient],
    resources: Resources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = await products(client, 2)
    targets = [first if n % 3 else second for n in range(VIEWS)]
    engine, redis, settings = resources.engine, resources.redis, resources.settings

    async def view(n: int) -> int:
        return (await shoppers[n].post(f"/products/{targets[n]}/views")).status_code

    # Views land while flushes run, two of them at once.
    half = VIEWS // 2
    answers = await asyncio.gather(
        *(view(n) for n in range(half)),
        flush_views(engine, redis, settings),
        flush_views(engine, redis, settings),
    )
    # A flush dies after moving the counters, before writing PostgreSQL...
    with monkeypatch.context() as patched:
        patched.setattr(repository, "apply_batch", _dies)
        answers += await asyncio.gather(*(view(n) for n in range(half, VIEWS)))
        with pytest.raises(ConnectionResetError):
            await flush_views(engine, redis, settings)
    # ...and another after committing, before deleting the batch from Redis.
    with monkeypatch.context() as patched:
        patched.setattr(counters, "forget_batch", _dies)
        with pytest.raises(ConnectionResetError):
            await flush_views(engine, redis, settings)
    outcomes = await asyncio.gather(*(flush_views(engine, redis, settings) for _ in range(2)))

    assert [answer for answer in answers if isinstance(answer, int)] == [202] * VIEWS
    assert await flushed(resources) == {first: targets.count(first), second: targets.count(second)}
    assert sum(outcome.batches_already_applied for outcome in outcomes) >= 1
    keys = ViewKeys(settings.redis_key_prefix)
    assert await redis.exists(keys.pending, keys.batches) == 0


async def test_a_flush_after_a_flush_finds_nothing_to_add(resources: Resources) -> None:
    keys = ViewKeys(resources.settings.redis_key_prefix)
    batch = new_id()
    await resources.redis.hset(keys.pending, f"2026-03-10:{uuid.uuid4()}", 4)
    assert await counters.move_pending(resources.redis, keys, batch)

    stats = await flush.flush_views(resources.engine, resources.redis, resources.settings)
    again = await flush.flush_views(resources.engine, resources.redis, resources.settings)

    assert (stats.batches_applied, stats.views_flushed) == (1, 4)
    assert (again.batches_applied, again.views_flushed) == (0, 0)


async def test_popular_comes_from_postgres_when_redis_has_nothing(
    client: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    shoppers: list[httpx.AsyncClient],
    resources: Resources,
) -> None:
    mug, tea = await products(client, 2)
    await view_by_many(shoppers, tea, 2)
    await view_by_many(shoppers, mug, 1)
    await flush_views(resources.engine, resources.redis, resources.settings)
    keys = [key async for key in resources.redis.scan_iter(match="*{views}:popular:*")]
    await resources.redis.delete(*keys)  # a Redis restarted without its data

    popular = (await anonymous.get("/products/popular")).json()

    assert popular["source"] == "database"
    assert popular["items"] == [{"product_id": tea, "views": 2}, {"product_id": mug, "views": 1}]


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    server = start_redis()
    yield server
    server.stop()


async def test_with_redis_down_views_are_accepted_and_popular_reads_postgres(
    client: httpx.AsyncClient, settings: Settings, own_redis: EmbeddedRedis
) -> None:
    fragile = Resources.from_settings(settings.model_copy(update={"redis_url": own_redis.url}))
    try:
        app = wiring.catalog_app(lambda: fragile)
        async with asgi_client(app) as anonymous, asgi_client(app, ip="10.0.0.2") as other:
            mug, tea = await products(client, 2)
            for shopper, product_id in ((anonymous, tea), (other, tea), (anonymous, mug)):
                await shopper.post(f"/products/{product_id}/views")
            await flush_views(fragile.engine, fragile.redis, fragile.settings)
            own_redis.stop()

            viewed = await anonymous.post(f"/products/{mug}/views")
            popular = await anonymous.get("/products/popular", params={"window": "24h"})
    finally:
        await fragile.close()

    assert viewed.status_code == 202  # counted as dropped, not an error
    assert popular.status_code == 200
    assert popular.json()["source"] == "database"
    assert [item["product_id"] for item in popular.json()["items"]] == [tea, mug]


async def _dies(*args: object, **kwargs: object) -> None:
    raise ConnectionResetError("the flush's container was killed here")

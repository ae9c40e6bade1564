"""Cache-aside under load and failure: stampedes, missing ids, races, Redis down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from storefront import wiring
from storefront.adapters.cache import Cache, CacheOutcome
from storefront.adapters.circuit_breaker import CircuitBreaker
from storefront.catalog.service import product_cache_key
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.embedded import EmbeddedRedis, start_redis
from tests.integration.conftest import asgi_client, counting_queries, create_product

PRODUCT_SELECT = "FROM products"


async def test_cold_key_under_200_concurrent_requests_is_loaded_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    created = await create_product(client)
    # Cold: the write put the product into the cache; it is gone, as after its TTL.
    await resources.cache.invalidate(product_cache_key(uuid.UUID(str(created["id"]))))

    with counting_queries(resources.engine) as queries:
        responses = await asyncio.gather(
            *(client.get(f"/products/{created['id']}") for _ in range(200))
        )

    assert {response.status_code for response in responses} == {200}
    assert 1 <= queries.count(PRODUCT_SELECT) <= 3
    assert 1 <= [r.headers["x-cache"] for r in responses].count("miss") <= 3


async def test_lease_makes_other_containers_wait_instead_of_querying(
    resources: Resources, settings: Settings
) -> None:
    """Twenty caches on one Redis (twenty containers): one loads, the rest wait."""
    containers = [Cache(resources.redis, settings, CircuitBreaker(5)) for _ in range(20)]
    loads = 0

    async def slow_load() -> bytes:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.05)
        return b'{"value": 1}'

    results = await asyncio.gather(
        *(cache.get_or_load("lease-test", slow_load) for cache in containers)
    )

    assert loads == 1
    assert {value for value, _ in results} == {b'{"value": 1}'}
    outcomes = [outcome for _, outcome in results]
    assert outcomes.count(CacheOutcome.MISS) == 1
    assert outcomes.count(CacheOutcome.HIT) == 19


async def test_missing_ids_are_cached_briefly(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    missing = uuid.uuid4()

    with counting_queries(resources.engine) as queries:
        answers = [await client.get(f"/products/{missing}") for _ in range(50)]

    assert {answer.status_code for answer in answers} == {404}
    assert queries.count(PRODUCT_SELECT) == 1
    assert answers[-1].headers["content-type"] == "application/problem+json"


async def test_a_value_loaded_before_a_write_is_not_cached_after_it(
    resources: Resources, settings: Settings
) -> None:
    """The reader loads the old row, the writer commits and invalidates, then
    the reader tries to fill: its lease is gone, so the old row stays out."""
    cache = resources.cache

    async def load_old_row_while_a_write_lands() -> bytes:
        await cache.invalidate("race-test")  # the writer's post-commit invalidation
        return b"old"

    value, outcome = await cache.get_or_load("race-test", load_old_row_while_a_write_lands)
    assert (value, outcome) == (b"old", CacheOutcome.MISS)

    async def load_new_row() -> bytes:
        return b"new"

    assert await cache.get_or_load("race-test", load_new_row) == (b"new", CacheOutcome.MISS)
    assert await cache.get_or_load("race-test", load_new_row) == (b"new", CacheOutcome.HIT)


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own, so it can be killed without touching shared ones."""
    server = start_redis()
    yield server
    server.stop()


# The breaker's cooldown in these tests: short, so a test can wait it out.
# A test that counts what an open breaker skips asks for a long one instead
# (pytest.mark.parametrize("cooldown", ..., indirect=True)), so a slow machine
# cannot let the breaker half-open in the middle of its requests.
@pytest.fixture
def cooldown(request: pytest.FixtureRequest) -> float:
    return float(getattr(request, "param", 0.2))


@pytest.fixture
async def fragile_client(
    settings: Settings, own_redis: EmbeddedRedis, admin_headers: dict[str, str], cooldown: float
) -> AsyncIterator[tuple[httpx.AsyncClient, Resources]]:
    fragile = Resources.from_settings(
        settings.model_copy(
            update={
                "redis_url": own_redis.url,
                "cache_breaker_cooldown_seconds": cooldown,
                # The admin writes on after Redis stops: these tests are about
                # the cache. By default an admin token whose revocation cannot
                # be read is refused (tests/integration/test_token_revocation.py).
                "auth_revocation_fail_closed": "never",
            }
        )
    )
    async with asgi_client(wiring.catalog_app(lambda: fragile), admin_headers) as client:
        yield client, fragile
    await fragile.close()


async def test_redis_stopped_mid_test_reads_and_writes_still_work(
    fragile_client: tuple[httpx.AsyncClient, Resources], own_redis: EmbeddedRedis
) -> None:
    client, _fragile = fragile_client
    created = await create_product(client)
    url = f"/products/{created['id']}"
    await client.get(url)
    assert (await client.get(url)).headers["x-cache"] == "hit"

    own_redis.stop()
    read = await client.get(url)
    listed = await client.get("/products")
    written = await client.patch(url, json={"name": "Renamed while Redis is down"})
    read_after_write = await client.get(url)
    ready = await client.get("/health/ready")

    assert (read.status_code, read.headers["x-cache"]) == (200, "bypass")
    assert (listed.status_code, listed.headers["x-cache"]) == (200, "bypass")
    assert written.status_code == 200
    assert read_after_write.json()["name"] == "Renamed while Redis is down"
    assert read_after_write.headers["x-cache"] == "bypass"
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"]["ok"] is False


@pytest.mark.parametrize("cooldown", [60.0], indirect=True)
async def test_open_breaker_skips_redis_entirely(
    fragile_client: tuple[httpx.AsyncClient, Resources], own_redis: EmbeddedRedis
) -> None:
    client, fragile = fragile_client
    created = await create_product(client)
    own_redis.stop()
    await client.get(f"/products/{created['id']}")  # pays the failure once, opens the breaker
    calls = 0
    original = fragile.redis.execute_command

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(*args, **kwargs)

    fragile.redis.execute_command = counting  # type: ignore[method-assign]
    answers = [await client.get(f"/products/{created['id']}") for _ in range(10)]

    assert {answer.headers["x-cache"] for answer in answers} == {"bypass"}
    assert calls == 0


async def test_cache_recovers_when_redis_returns(
    fragile_client: tuple[httpx.AsyncClient, Resources], own_redis: EmbeddedRedis
) -> None:
    client, _ = fragile_client
    created = await create_product(client)
    url = f"/products/{created['id']}"
    own_redis.stop()
    assert (await client.get(url)).headers["x-cache"] == "bypass"

    revived = start_redis(None, own_redis.port)
    try:
        await asyncio.sleep(0.3)  # the breaker's cooldown
        outcomes = [(await client.get(url)).headers["x-cache"] for _ in range(2)]
    finally:
        revived.stop()

    assert outcomes == ["miss", "hit"]

"""Rate limits over ASGI on real Redis: 429 with headers, separate budgets, fail open."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from storefront import wiring
from storefront.adapters.redis import caller_digest
from storefront.observability import metrics
from storefront.resources import Resources
from storefront.settings import Settings
from storefront.web.rate_limits import FAIL_OPEN_METRIC, RateLimiter, RouteClass
from storefront_dev.embedded import EmbeddedRedis, start_redis
from tests.conftest import bearer, token_for

PROBLEM = "application/problem+json"
SMALL_LIMITS = {
    "rate_limit_read": "3/minute",
    "rate_limit_write": "2/minute",
    "rate_limit_orders": "2/minute",
    "rate_limit_anonymous": "2/minute",
    "rate_limit_failed_auth": "3/minute",
}


@asynccontextmanager
async def caller(
    app: FastAPI, *, subject: str | None = None, admin: bool = False, ip: str = "198.51.100.7"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client from ``ip``, with a token for ``subject`` when given."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    headers = bearer(token_for(subject, admin=admin)) if subject else None
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as client:
        yield client


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[Resources]:
    resources = Resources.from_settings(settings.model_copy(update=SMALL_LIMITS))
    yield resources
    await resources.close()


@pytest.fixture
def catalog(limited: Resources) -> FastAPI:
    return wiring.catalog_app(lambda: limited)


@pytest.fixture
def orders(limited: Resources) -> FastAPI:
    return wiring.orders_app(lambda: limited)


async def test_the_limit_answers_429_with_retry_after_and_ratelimit_headers(
    catalog: FastAPI,
) -> None:
    async with caller(catalog, subject="alice") as alice:
        allowed = [await alice.get("/products") for _ in range(3)]
        refused = await alice.get("/products")

    assert [answer.status_code for answer in allowed] == [200, 200, 200]
    assert [answer.headers["ratelimit-remaining"] for answer in allowed] == ["2", "1", "0"]
    assert {answer.headers["ratelimit-limit"] for answer in allowed} == {"3"}
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["status"] == 429
    assert refused.json()["title"] == "Too many requests"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["ratelimit-reset"]) <= 60


async def test_each_principal_has_its_own_budget(catalog: FastAPI) -> None:
    async with caller(catalog, subject="alice") as alice, caller(catalog, subject="bob") as bob:
        for _ in range(3):
            await alice.get("/products")
        assert (await alice.get("/products")).status_code == 429
        assert (await bob.get("/products")).status_code == 200


async def test_the_limiter_runs_after_authentication_declared_on_the_route(
    catalog: FastAPI,
) -> None:
    """POST /categories authenticates through its own parameter; two admins from
    one IP still get a budget each, so the limiter saw who they were."""
    async with (
        caller(catalog, subject="admin-1", admin=True) as first,
        caller(catalog, subject="admin-2", admin=True) as second,
    ):
        created = [await first.post("/categories", json={"name": f"C{n}"}) for n in range(2)]
        refused = await first.post("/categories", json={"name": "C2"})
        other = await second.post("/categories", json={"name": "D0"})

    assert [answer.status_code for answer in created] == [201, 201]
    assert refused.status_code == 429
    assert other.status_code == 201


async def test_anonymous_callers_are_limited_by_ip_not_forwarded_for(catalog: FastAPI) -> None:
    async with (
        caller(catalog, ip="203.0.113.1") as first,
        caller(catalog, ip="203.0.113.2") as second,
    ):
        # The anonymous limit (2) is below the read limit (3), so it applies.
        answers = [await first.get("/categories") for _ in range(2)]
        refused = await first.get("/categories")
        spoofed = await first.get("/categories", headers={"X-Forwarded-For": "192.0.2.99"})
        other = await second.get("/categories")

    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[0].headers["ratelimit-limit"] == "2"
    assert (refused.status_code, spoofed.status_code) == (429, 429)
    assert other.status_code == 200


async def test_route_classes_have_separate_budgets(catalog: FastAPI, orders: FastAPI) -> None:
    missing = uuid.uuid4()
    async with (
        caller(catalog, subject="carol", admin=True) as carol,
        caller(orders, subject="carol", admin=True) as carol_orders,
    ):
        reads = [await carol.get("/categories") for _ in range(4)]
        write = await carol.post("/categories", json={"name": "Tea"})
        cancels = [await carol_orders.post(f"/orders/{missing}/cancel") for _ in range(3)]
        order_read = await carol_orders.get("/orders")

    assert [answer.status_code for answer in reads] == [200, 200, 200, 429]
    assert write.status_code == 201
    # Counted before the route looks the order up: a 404 spends the budget too.
    assert [answer.status_code for answer in cancels] == [404, 404, 429]
    assert order_read.status_code == 429  # reads are one class across both apps


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own, so it can be stopped without touching the shared one."""
    server = start_redis()
    yield server
    server.stop()


async def test_requests_pass_and_are_counted_when_redis_is_down(
    settings: Settings, own_redis: EmbeddedRedis
) -> None:
    fragile = Resources.from_settings(
        settings.model_copy(
            update={
                **SMALL_LIMITS,
                "redis_url": own_redis.url,
                # Long enough that the breaker stays open for the whole test.
                "cache_breaker_cooldown_seconds": 600,
            }
        )
    )
    app = wiring.catalog_app(lambda: fragile)
    try:
        async with caller(app, subject="dave") as dave:
            assert (await dave.get("/products")).headers["ratelimit-remaining"] == "2"
            own_redis.stop()
            metrics.clear_metrics()
            answers = [await dave.get("/products") for _ in range(5)]
    finally:
        await fragile.close()

    assert [answer.status_code for answer in answers] == [200] * 5
    assert not any("ratelimit-limit" in answer.headers for answer in answers)
    assert sum(metrics.metric_set[FAIL_OPEN_METRIC]["Value"]) == 5
    limiter: RateLimiter = app.state.rate_limiter
    assert limiter.breaker.is_open  # later requests skipped Redis instead of failing again


async def test_the_limiter_and_limits_read_the_same_windows(limited: Resources) -> None:
    """One script counts and reads; ``limits`` itself must agree with it."""
    settings = limited.settings
    limiter = RateLimiter(limited.redis, settings)
    scheme = "async+redis+cluster" if settings.redis_cluster else "async+redis"
    assert settings.redis_url is not None
    url = settings.redis_url.split("://", 1)[1]
    storage_type = RedisClusterStorage if settings.redis_cluster else RedisStorage
    reference = SlidingWindowCounterRateLimiter(
        storage_type(f"{scheme}://{url}", implementation="redispy", key_prefix=limiter.key_prefix)
    )
    limit = limiter.limit_for(RouteClass.READ, anonymous=False)  # 3 per minute
    caller_name = f"sub:erin-{uuid.uuid4()}"
    who = ("read", caller_digest(caller_name))
    decisions = [await limiter.hit(RouteClass.READ, caller_name, anonymous=False) for _ in range(2)]
    assert [(d.allowed, d.remaining) for d in decisions if d] == [(True, 2), (True, 1)]
    assert (await reference.get_window_stats(limit, *who)).remaining == 1

    assert await reference.hit(limit, *who)  # the third hit, counted by limits
    refused = await limiter.hit(RouteClass.READ, caller_name, anonymous=False)
    assert refused is not None
    assert (refused.allowed, refused.remaining) == (False, 0)
    assert not await reference.hit(limit, *who)


async def test_forged_tokens_are_counted_per_source_and_answered_429(catalog: FastAPI) -> None:
    forged = {"Authorization": "Bearer " + token_for("mallory")[:-4] + "AAAA"}

    async with caller(catalog, ip="203.0.113.9") as attacker:
        answers = [await attacker.get("/products", headers=forged) for _ in range(5)]
    async with caller(catalog, ip="203.0.113.10") as neighbour:
        other = await neighbour.get("/products", headers=forged)

    assert [answer.status_code for answer in answers] == [401, 401, 401, 429, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert answers[-1].headers["content-type"] == PROBLEM
    assert other.status_code == 401  # counted per source

"""Chaos scenarios 2 and 3: Redis killed and restarted; PostgreSQL stopped and started.

Scenario 2: while clients read the catalog and place orders, Redis (without
persistence) is SIGKILLed, stays down a while, and comes back empty: no
stream, no consumer group, no lease. Reads must keep answering 200 (the
cache is bypassed), orders must keep being accepted (rate limits fail open;
idempotency lives in PostgreSQL), and once Redis is back the relay finds
every stream behind PostgreSQL's record and republishes from the outbox what
the groups had not settled, publishes what waited, and the workers (their
groups recreated) finish the saga: nothing lost.

Scenario 3: PostgreSQL is stopped under the API. What needs it answers 503
``application/problem+json`` with ``Retry-After`` and no stack trace; once
it is started again the same warm app answers 200/201 without a restart.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx

from storefront import wiring
from storefront.resources import Resources
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.fixtures import seed_products
from storefront_dev.bench.processes import SAGA_FUNCTIONS, FunctionProcess
from storefront_dev.chaos.kills import (
    CHAOS_FUNCTION_ENVIRONMENT,
    SAGA_GROUPS,
    ChaosFailure,
    KillReport,
    check_books,
    repairs_recorded,
    settle,
)
from storefront_dev.chaos.servers import ChaosPostgres, ChaosRedis

__all__ = ["run_postgres_outage", "run_redis_outage"]

Request = Callable[[], Awaitable[httpx.Response]]


async def _traffic(requests: dict[str, Request], stop: asyncio.Event) -> Counter[str]:
    """Send each kind of request in turn until ``stop``; count (kind, status)."""
    seen: Counter[str] = Counter()
    while not stop.is_set():
        for kind, request in requests.items():
            response = await request()
            seen[f"{kind} {response.status_code}"] += 1
            if response.status_code >= 500 and "Traceback" in response.text:
                raise ChaosFailure(f"{kind}: a stack trace in a {response.status_code}")
        await asyncio.sleep(0.01)
    return seen


def _clients(
    env: BenchEnvironment, resources: Resources
) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    catalog = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=wiring.catalog_app(lambda: resources)),
        base_url="http://chaos",
    )
    orders = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=wiring.orders_app(lambda: resources)),
        base_url="http://chaos",
        headers={"Authorization": f"Bearer {env.token('chaos-outage')}"},
    )
    return catalog, orders


async def run_redis_outage(
    env: BenchEnvironment, redis: ChaosRedis, *, quick: bool, logs: Path
) -> list[str]:
    down_seconds = 2.0 if quick else 10.0
    connection = await asyncpg.connect(env.database_url)
    processes = [
        FunctionProcess(
            name, env.environment() | CHAOS_FUNCTION_ENVIRONMENT, log=logs / f"{name}-redis.log"
        )
        for name in SAGA_FUNCTIONS
    ]
    resources = Resources.from_settings(
        env.settings.model_copy(update={"cache_breaker_cooldown_seconds": 0.5})
    )
    catalog, orders = _clients(env, resources)
    accepted: list[str] = []
    try:
        (product,) = await seed_products(connection, 1, on_hand=1_000_000, label="redis")
        await asyncio.gather(*(asyncio.to_thread(process.start) for process in processes))

        async def place() -> httpx.Response:
            body = {"items": [{"product_id": str(product), "quantity": 1}]}
            response = await orders.post(
                "/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
            if response.status_code == 201:
                accepted.append(response.json()["id"])
            return response

        requests: dict[str, Request] = {
            "GET /products/{id}": lambda: catalog.get(f"/products/{product}"),
            "POST /orders": place,
        }
        before = asyncio.Event()
        counted = asyncio.create_task(_traffic(requests, before))
        await asyncio.sleep(1.0)
        before.set()
        healthy = await counted
        relayed = await connection.fetchval(
            "SELECT coalesce(sum(last_sequence), 0) FROM event_partitions"
        )
        redis.kill()
        during = asyncio.Event()
        counted = asyncio.create_task(_traffic(requests, during))
        await asyncio.sleep(down_seconds)
        during.set()
        outage = await counted
        redis.start()
        back = time.monotonic()
        await settle(connection, 120.0)
        caught_up = time.monotonic() - back
        report = KillReport(orders=len(accepted))
        await check_books(env, connection, report, streams_complete=False)
        repairs, republished = await repairs_recorded(connection)
    finally:
        for process in processes:
            process.stop()
        await catalog.aclose()
        await orders.aclose()
        await resources.close()
        await connection.close()
    failed = {kind: n for kind, n in outage.items() if not kind.endswith((" 200", " 201"))}
    if failed:
        raise ChaosFailure(f"with Redis down: {dict(outage)}")
    if relayed and not repairs:
        raise ChaosFailure(f"Redis lost {relayed} relayed events and no stream was repaired")
    return [
        f"before: {dict(healthy)}",
        f"Redis down {down_seconds:g} s: {dict(outage)} (all answered)",
        f"relay and workers caught up {caught_up:.1f} s after Redis came back (empty)",
        f"streams repaired: {repairs}, events republished from the outbox: {republished}",
        f"orders: {report.statuses}; events: {report.events}, 0 lost, every one settled by"
        f" {', '.join(SAGA_GROUPS)}; dead letters: {report.dead_letters}",
    ]


async def run_postgres_outage(
    env: BenchEnvironment, postgres: ChaosPostgres, *, quick: bool
) -> list[str]:
    down_seconds = 2.0 if quick else 8.0
    settings = env.settings.model_copy(update={"database_connect_timeout": 1.0})
    resources = Resources.from_settings(settings)
    catalog, orders = _clients(env, resources)
    connection = await asyncpg.connect(env.database_url)
    try:
        (product,) = await seed_products(connection, 1, on_hand=1_000_000, label="pg")
    finally:
        await connection.close()
    body = {"items": [{"product_id": str(product), "quantity": 1}]}
    requests: dict[str, Request] = {
        "GET /orders": lambda: orders.get("/orders"),
        "POST /orders": lambda: orders.post("/orders", json=body),
        "GET /health/ready": lambda: catalog.get("/health/ready"),
    }
    try:
        stop = asyncio.Event()
        counted = asyncio.create_task(_traffic(requests, stop))
        await asyncio.sleep(0.5)
        stop.set()
        healthy = await counted
        await asyncio.to_thread(postgres.stop)
        problems = []
        for kind, request in requests.items():
            response = await request()
            problems.append((kind, response))
            if response.status_code != 503:
                raise ChaosFailure(f"{kind} with PostgreSQL stopped: {response.status_code}")
            if not response.headers.get("retry-after"):
                raise ChaosFailure(f"{kind}: 503 without Retry-After")
            if kind != "GET /health/ready" and response.headers["content-type"] != (
                "application/problem+json"
            ):
                raise ChaosFailure(f"{kind}: 503 is {response.headers['content-type']}")
            if "Traceback" in response.text or "asyncpg" in response.text.lower():
                raise ChaosFailure(f"{kind}: the 503 leaks internals: {response.text}")
        stop = asyncio.Event()
        counted = asyncio.create_task(_traffic(requests, stop))
        await asyncio.sleep(down_seconds)
        stop.set()
        outage = await counted
        await asyncio.to_thread(postgres.start)
        back = time.monotonic()
        recovered = None
        while time.monotonic() - back < 30:
            statuses = [(await request()).status_code for request in requests.values()]
            if all(status in (200, 201) for status in statuses):
                recovered = time.monotonic() - back
                break
            await asyncio.sleep(0.1)
        if recovered is None:
            raise ChaosFailure("the API did not recover within 30 s of PostgreSQL's return")
    finally:
        await catalog.aclose()
        await orders.aclose()
        await resources.close()
    return [
        f"before: {dict(healthy)}",
        f"PostgreSQL stopped {down_seconds:g} s: {dict(outage)}; every 503 problem+json"
        " with Retry-After, no stack trace",
        f"recovered {recovered:.1f} s after PostgreSQL came back, same warm app",
    ]

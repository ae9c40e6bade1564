"""Benchmark 4: warm invocations of the API functions' handlers, in process.

Each call is ``handler(event, context)`` exactly as Lambda makes it, with an
API Gateway v2 event, on a warm container (module state, event loop, pooled
connections all kept). The reference is the floor of any FastAPI-on-Lambda
handler: a bare FastAPI app behind Mangum whose one route answers with one
Redis ``GET``. Calls go round-robin over floor and subjects (a different
order every round), so noise lands on all alike.

Logs and EMF metrics are written as on Lambda (to stdout, which is pointed at
/dev/null while measuring): they are part of what a request costs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import FastAPI, Response
from mangum import Mangum

from storefront import runtime
from storefront.adapters.redis import RedisClient, create_redis
from storefront.catalog.service import product_cache_key
from storefront_dev.bench.api_events import BenchContext, http_event
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.fixtures import seed_products
from storefront_dev.bench.measure import Figure, Report, median, percentile
from storefront_dev.bench.processes import project_root
from storefront_dev.in_process import load_function, settings_environment

__all__ = ["bench_warm"]

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def floor_handler(redis: Callable[[], RedisClient], key: Callable[[str], str]) -> Handler:
    """A minimal FastAPI + Mangum handler answering with one Redis GET."""
    app = FastAPI()

    @app.get("/products/{product_id}")
    async def get_product(product_id: str) -> Response:
        body = await redis().get(key(product_id))
        return Response(body, media_type="application/json")

    asgi = Mangum(app, lifespan="off")

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        response: dict[str, Any] = asgi(event, context)
        return response

    return handler


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    # At the descriptor: the Powertools logger holds its own reference to stdout.
    saved = os.dup(1)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _timed(handler: Handler, event: dict[str, Any], expected: int) -> float:
    started = time.perf_counter()
    response = handler(event, BenchContext())
    elapsed = (time.perf_counter() - started) * 1000
    if response["statusCode"] != expected:
        raise RuntimeError(f"{event['routeKey']} answered {response['statusCode']}: {response}")
    return elapsed


def bench_warm(env: BenchEnvironment, report: Report, *, rounds: int) -> None:
    """Run on the container loop (:mod:`storefront.runtime`), not inside asyncio.run."""
    root = project_root()
    products = runtime.run(_seed(env, rounds + 1))
    cached, uncached = products[0], products[1:]
    token = env.token("bench-customer")
    floor_redis: list[RedisClient] = []

    def redis() -> RedisClient:
        if not floor_redis:
            floor_redis.append(create_redis(env.settings))
        return floor_redis[0]

    def key(product_id: str) -> str:
        # The catalog's own cache entry, so both answer with the same body.
        return f"{env.redis_key_prefix}{{{product_cache_key(UUID(product_id))}}}"

    order = {"items": [{"product_id": str(cached), "quantity": 1}]}
    with settings_environment(env.environment()):
        catalog: Handler = load_function(root, "catalog_api").handler
        orders: Handler = load_function(root, "orders_api").handler
        floor = floor_handler(redis, key)
        calls: dict[str, Callable[[int], float]] = {
            "floor": lambda _: _timed(floor, _product_event(cached), 200),
            "hit": lambda _: _timed(catalog, _product_event(cached), 200),
            "miss": lambda index: _timed(catalog, _product_event(uncached[index]), 200),
            "order": lambda _: _timed(
                orders, http_event("POST", "/orders", body=order, token=token), 201
            ),
        }
        try:
            samples = _measure(calls, rounds)
        finally:
            runtime.run(runtime.container_resources().close())
            if floor_redis:
                runtime.run(floor_redis[0].aclose())
    _report(report, samples, rounds)


async def _seed(env: BenchEnvironment, count: int) -> list[UUID]:
    connection = await asyncpg.connect(env.database_url)
    try:
        return await seed_products(connection, count, on_hand=1_000_000_000, label="warm")
    finally:
        await connection.close()


def _product_event(product_id: UUID) -> dict[str, Any]:
    return http_event(
        "GET",
        f"/products/{product_id}",
        route="/products/{product_id}",
        path_parameters={"product_id": str(product_id)},
    )


def _measure(calls: dict[str, Callable[[int], float]], rounds: int) -> dict[str, list[float]]:
    """Samples of each call, in ms: ``rounds`` rounds, each in a different order."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    with _quiet_stdout():
        # Warm: the first calls build what every later call reuses.
        for name in ("hit", "order", "floor"):
            for _ in range(20):
                calls[name](0)
        names = list(calls)
        for index in range(rounds):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(calls[name](index))
    return samples


def _report(report: Report, samples: dict[str, list[float]], rounds: int) -> None:
    floor_p50 = median(samples["floor"])
    for name, label, target in (
        ("hit", "GET /products/{id}, cache hit", 1.5),
        ("miss", "GET /products/{id}, cache miss", None),
        ("order", "POST /orders", None),
    ):
        report.add(
            Figure(
                "4 warm handler",
                f"{label} p50",
                median(samples[name]),
                "ms",
                reference="FastAPI + Mangum + one Redis GET, p50",
                reference_value=floor_p50,
                target=target,
                samples=rounds,
            )
        )
        report.add(
            Figure(
                "4 warm handler",
                f"{label} p99",
                percentile(samples[name], 0.99),
                "ms",
                reference="floor p99",
                reference_value=percentile(samples["floor"], 0.99),
                samples=rounds,
            )
        )

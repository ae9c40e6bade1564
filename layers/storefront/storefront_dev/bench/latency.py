"""Benchmark 3: end-to-end latency, an order's commit to order_worker's commit.

The relay and both workers run as real processes in loop mode with the
template's time budgets (:mod:`.processes`), woken by NOTIFY and blocked in
``XREADGROUP``, as deployed. Orders arrive open-loop at a steady rate: the
n-th is due at start + n/rate whatever happened to the ones before, so a slow
pipeline cannot slow the load down and hide its own latency.

Each order is written the way ``place_order`` writes it (the order, its
item, the OrderPlaced outbox row and the NOTIFY, in one transaction), by a
lean asyncpg writer rather than the API: on a 2-core machine every cycle the
load generator burns is taken from the pipeline being measured, and the API's
own latency is benchmark 4's subject.

Latency: from the moment the order's COMMIT returned (the client's clock) to
``orders.updated_at`` of the CONFIRMED row, which order_worker's transaction
sets from PostgreSQL's ``now()`` (same host, same clock). ``now()`` is that
transaction's start, so the figure leaves out the few statements the worker
runs before its own commit.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from uuid import UUID

import asyncpg

from storefront.events.envelope import Event
from storefront.events.partitions import partition_of
from storefront.ids import new_id
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.fixtures import UNIT_PRICE, placed_events, seed_products
from storefront_dev.bench.measure import Figure, Report, percentile
from storefront_dev.bench.processes import SAGA_FUNCTIONS, FunctionProcess

__all__ = ["bench_latency"]

# One statement, so one round trip and an implicit transaction: the order, its
# item and its event commit together, as in place_order.
_PLACE = """
WITH new_order AS (
    INSERT INTO orders (id, customer_id, status, total, currency)
    VALUES ($1, 'bench-customer', 'PENDING', $3, 'EUR')
), new_item AS (
    INSERT INTO order_items (order_id, product_id, quantity, unit_price)
    VALUES ($1, $2, 1, $3)
)
INSERT INTO outbox
    (event_id, event_type, version, aggregate_type, aggregate_id, partition, envelope)
VALUES ($4, 'OrderPlaced', 1, 'order', $1::text, $5, $6::jsonb)
RETURNING pg_notify('storefront_outbox', '')
"""


async def _place_orders(
    pool: asyncpg.Pool, products: list[UUID], count: int, rate: float, partitions: int
) -> tuple[dict[UUID, float], list[float]]:
    """``count`` orders at ``rate`` per second: each one's commit time, and how late each was."""
    orders = [(event.aggregate_id, event) for event in _events(products, count)]
    committed: dict[UUID, float] = {}
    late: list[float] = []
    loop = asyncio.get_running_loop()

    async def place(index: int, due: float) -> None:
        order_id, event = orders[index]
        async with pool.acquire() as connection:
            await connection.fetchval(
                _PLACE,
                UUID(order_id),
                event.payload["items"][0]["product_id"],
                UNIT_PRICE,
                event.event_id,
                partition_of(order_id, partitions),
                event.model_dump_json(),
            )
        committed[UUID(order_id)] = time.time()
        late.append(loop.time() - due)

    tasks = []
    start = loop.time() + 0.1
    for index in range(count):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(place(index, due)))
    await asyncio.gather(*tasks)
    return committed, late


def _events(products: list[UUID], count: int) -> list[Event]:
    return placed_events([(new_id(), products[index % len(products)]) for index in range(count)])


async def _confirmed_at(connection: asyncpg.Connection, ids: list[UUID]) -> dict[UUID, float]:
    rows = await connection.fetch(
        "SELECT id, extract(epoch FROM updated_at)::float8 AS at FROM orders"
        " WHERE status = 'CONFIRMED' AND id = ANY($1::uuid[])",
        ids,
    )
    return {row["id"]: row["at"] for row in rows}


async def _wait_confirmed(
    connection: asyncpg.Connection, ids: list[UUID], seconds: float
) -> dict[UUID, float]:
    deadline = time.monotonic() + seconds
    while True:
        confirmed = await _confirmed_at(connection, ids)
        if len(confirmed) == len(ids) or time.monotonic() > deadline:
            return confirmed
        await asyncio.sleep(0.2)


async def bench_latency(
    env: BenchEnvironment,
    report: Report,
    *,
    rate: float,
    seconds: float,
    logs: Path,
    gentle_rate: float = 20.0,
    gentle_seconds: float = 10.0,
) -> None:
    """The target's rate, and a gentle one: when the machine cannot keep up
    with the first, its figures measure the queue, and the second shows what
    one order takes through an idle pipeline."""
    admin = await asyncpg.connect(env.database_url)
    products = await seed_products(admin, 50, on_hand=1_000_000_000, label="latency")
    pool = await asyncpg.create_pool(env.database_url, min_size=4, max_size=8)
    processes = [
        FunctionProcess(name, env.environment(), log=logs / f"{name}.log")
        for name in SAGA_FUNCTIONS
    ]
    partitions = env.settings.event_partitions
    runs: list[tuple[float, float, dict[UUID, float], dict[UUID, float], list[float]]] = []
    try:
        for process in processes:
            process.start()
        # A warm-up: first-use costs are not latency.
        warm, _ = await _place_orders(pool, products, 50, 20, partitions)
        await _wait_confirmed(admin, list(warm), 30)
        # Gentle first: after the target's rate the pipeline may hold a backlog
        # that the gentle orders would queue behind.
        for run_rate, run_seconds in ((gentle_rate, gentle_seconds), (rate, seconds)):
            count = int(run_rate * run_seconds)
            committed, late = await _place_orders(pool, products, count, run_rate, partitions)
            confirmed = await _wait_confirmed(admin, list(committed), 30)
            runs.append((run_rate, run_seconds, committed, confirmed, late))
        for process in processes:
            if not process.alive:
                raise RuntimeError(f"{process.function} died; see {process.log}")
    finally:
        for process in processes:
            process.stop()
        await pool.close()
        await admin.execute("TRUNCATE orders, outbox, inbox, stock_reservations CASCADE")
        await admin.close()
    for run_rate, run_seconds, committed, confirmed, late in reversed(runs):
        _report_run(
            report, run_rate, run_seconds, committed, confirmed, late, target=run_rate == rate
        )


def _report_run(
    report: Report,
    rate: float,
    seconds: float,
    committed: dict[UUID, float],
    confirmed: dict[UUID, float],
    late: list[float],
    *,
    target: bool,
) -> None:
    latencies = [(confirmed[id_] - at) * 1000 for id_, at in committed.items() if id_ in confirmed]
    if not latencies:
        raise RuntimeError("no order was confirmed; see the function logs")
    missing = len(committed) - len(latencies)
    # What the saga got through: confirmations per second from the first
    # commit to the last confirmation.
    span = max(confirmed.values()) - min(committed.values())
    throughput = len(latencies) / span if span > 0 else 0.0
    note = (
        f"{len(committed):,} orders at {rate:g}/s for {seconds:g} s; saga throughput"
        f" {throughput:.0f} orders/s; load generator p99 lateness"
        f" {percentile(late, 0.99) * 1000:.1f} ms"
    )
    if missing:
        note += f"; {missing} not CONFIRMED within 30 s of the last (not in the percentiles)"
    for name, fraction, goal in (("p50", 0.5, None), ("p95", 0.95, None), ("p99", 0.99, 50.0)):
        report.add(
            Figure(
                "3 end to end",
                f"commit -> CONFIRMED {name}, {rate:g} orders/s",
                percentile(latencies, fraction),
                "ms",
                target=goal if target else None,
                samples=len(latencies),
                note=note,
            )
        )
    report.notes.append(f"3 end to end at {rate:g} orders/s: {note}")

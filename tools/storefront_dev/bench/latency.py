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
runs before its own commit. Target: p99 <= 50 ms at 200 orders/s.

Saga throughput, against the machine's write-transaction ceiling measured in
the same run. Ceiling: a hand-written loop of the smallest write transaction
(one single-row ``UPDATE``, committed on its own: one round trip, one
commit), on ``CEILING_CONNECTIONS`` asyncpg connections at once, each on a
row of its own, for a few seconds, on the same PostgreSQL, with the
pipeline's processes started and idle. Throughput: a backlog of orders
committed at once (orders, items and OrderPlaced outbox rows in one
transaction, then the NOTIFY), and the time until the last is CONFIRMED.
An order costs at least three write transactions (its placement, the
inventory worker's, the order worker's), hence the reference, ceiling / 3.
Target: orders/s >= 0.5 x (ceiling / 3).
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

__all__ = ["CEILING_CONNECTIONS", "bench_latency", "write_ceiling"]

CEILING_CONNECTIONS = 4
# Write transactions an order costs at least: placement, inventory, order worker.
_TRANSACTIONS_PER_ORDER = 3
P99_TARGET_MS = 50.0
RATIO_TARGET = 0.5

# A backlog of orders in one statement: the orders, their items and their
# OrderPlaced outbox rows (in the given order, so outbox ids follow it).
_PLACE_MANY = """
WITH new_orders AS (
    INSERT INTO orders (id, customer_id, status, total, currency)
    SELECT o, 'bench-customer', 'PENDING', $3, 'EUR' FROM unnest($1::uuid[]) AS o
), new_items AS (
    INSERT INTO order_items (order_id, product_id, quantity, unit_price)
    SELECT o, p, 1, $3 FROM unnest($1::uuid[], $2::uuid[]) AS t(o, p)
)
INSERT INTO outbox
    (event_id, event_type, version, aggregate_type, aggregate_id, partition, envelope)
SELECT e, 'OrderPlaced', 1, 'order', o::text, p, v::jsonb
FROM unnest($1::uuid[], $4::uuid[], $5::smallint[], $6::text[]) WITH ORDINALITY
    AS t(o, e, p, v, n)
ORDER BY n
"""

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


async def write_ceiling(
    database_url: str, *, seconds: float, connections: int = CEILING_CONNECTIONS
) -> float:
    """Committed single-row UPDATE transactions per second, ``connections`` at once."""
    admin = await asyncpg.connect(database_url)
    await admin.execute(
        "CREATE TABLE IF NOT EXISTS bench_ceiling (id int PRIMARY KEY, n bigint NOT NULL)"
    )
    await admin.execute(
        "INSERT INTO bench_ceiling SELECT g, 0 FROM generate_series(1, $1) AS g"
        " ON CONFLICT DO NOTHING",
        connections,
    )
    clients = [await asyncpg.connect(database_url) for _ in range(connections)]
    loop = asyncio.get_running_loop()
    try:
        # Statements prepared and connections warm before the clock starts.
        for row, client in enumerate(clients, start=1):
            await client.execute("UPDATE bench_ceiling SET n = n + 1 WHERE id = $1", row)
        deadline = loop.time() + seconds

        async def writer(client: asyncpg.Connection, row: int) -> int:
            done = 0
            while loop.time() < deadline:
                await client.execute("UPDATE bench_ceiling SET n = n + 1 WHERE id = $1", row)
                done += 1
            return done

        started = loop.time()
        done = await asyncio.gather(
            *(writer(client, row) for row, client in enumerate(clients, start=1))
        )
        elapsed = loop.time() - started
    finally:
        for client in clients:
            await client.close()
        await admin.execute("DROP TABLE IF EXISTS bench_ceiling")
        await admin.close()
    return sum(done) / elapsed


async def _place_backlog(
    connection: asyncpg.Connection, products: list[UUID], count: int, partitions: int
) -> tuple[list[UUID], float]:
    """``count`` orders committed at once; their ids and the commit time."""
    events = _events(products, count)
    order_ids = [UUID(event.aggregate_id) for event in events]
    async with connection.transaction():
        await connection.execute(
            _PLACE_MANY,
            order_ids,
            [event.payload["items"][0]["product_id"] for event in events],
            UNIT_PRICE,
            [event.event_id for event in events],
            [partition_of(event.aggregate_id, partitions) for event in events],
            [event.model_dump_json() for event in events],
        )
        await connection.execute("SELECT pg_notify('storefront_outbox', '')")
    return order_ids, time.time()


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


async def _drain(connection: asyncpg.Connection, seconds: float) -> None:
    """Wait until no order is PENDING any more (or ``seconds`` passed)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not await connection.fetchval("SELECT count(*) FROM orders WHERE status = 'PENDING'"):
            return
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
    saga_orders: int = 3_000,
    ceiling_seconds: float = 3.0,
) -> None:
    """The target's rate, and a gentle one: when the machine cannot keep up
    with the first, its figures measure the queue, and the second shows what
    one order takes through an idle pipeline. Then the write ceiling and the
    saga's throughput on a backlog (see the module's docstring)."""
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
        # The ceiling with the pipeline idle (what the target's rate left
        # behind is drained first), then the backlog, right after it.
        await _drain(admin, 120 + rate * seconds / 50)
        before = await write_ceiling(env.database_url, seconds=ceiling_seconds)
        backlog, committed_at = await _place_backlog(admin, products, saga_orders, partitions)
        drained = await _wait_confirmed(admin, backlog, 60 + saga_orders / 50)
        # Measured again after: the two bracket the backlog, so noise from a
        # neighbour on this shared machine weighs on subject and reference alike.
        ceilings = (before, await write_ceiling(env.database_url, seconds=ceiling_seconds))
        for process in processes:
            if not process.alive:
                raise RuntimeError(f"{process.function} died; see {process.log}")
        durability = ", ".join(
            [
                f"{setting}={await admin.fetchval(f'SHOW {setting}')}"
                for setting in ("synchronous_commit", "fsync")
            ]
        )
    finally:
        for process in processes:
            process.stop()
        await pool.close()
        await admin.execute(
            "TRUNCATE orders, outbox, event_partitions, consumer_positions, dead_letters,"
            " stock_reservations CASCADE"
        )
        await admin.close()
    for run_rate, run_seconds, committed, confirmed, late in reversed(runs):
        _report_run(
            report, run_rate, run_seconds, committed, confirmed, late, target=run_rate == rate
        )
    _report_throughput(
        report, ceilings, saga_orders, committed_at, drained, durability, ceiling_seconds
    )


def _report_throughput(
    report: Report,
    ceilings: tuple[float, float],
    orders: int,
    committed_at: float,
    confirmed: dict[UUID, float],
    durability: str,
    ceiling_seconds: float,
) -> None:
    if len(confirmed) < orders:
        raise RuntimeError(
            f"{orders - len(confirmed)} of {orders} backlog orders not CONFIRMED; see the logs"
        )
    span = max(confirmed.values()) - committed_at
    throughput = orders / span if span > 0 else 0.0
    ceiling = sum(ceilings) / len(ceilings)
    reference = ceiling / _TRANSACTIONS_PER_ORDER
    report.add(
        Figure(
            "3 end to end",
            f"write-transaction ceiling, {CEILING_CONNECTIONS} connections",
            ceiling,
            "tx/s",
            note=(
                f"single-row UPDATE autocommit loop, {ceiling_seconds:g} s before and after the"
                f" backlog: {ceilings[0]:,.0f} and {ceilings[1]:,.0f} tx/s; {durability}"
            ),
            samples=len(ceilings),
        )
    )
    figure = report.add(
        Figure(
            "3 end to end",
            f"saga throughput, backlog of {orders:,} orders",
            throughput,
            "orders/s",
            reference=f"ceiling / {_TRANSACTIONS_PER_ORDER}",
            reference_value=reference,
            target=RATIO_TARGET,
            better="higher",
            note=f"{orders:,} orders committed at once, the last CONFIRMED {span:.2f} s later",
        )
    )
    report.notes.append(
        f"3 end to end, saga throughput: {throughput:,.0f} orders/s, write-transaction ceiling"
        f" {ceiling:,.0f} tx/s (mean of {ceilings[0]:,.0f} before and {ceilings[1]:,.0f} after;"
        f" {CEILING_CONNECTIONS} connections, {durability}),"
        f" ratio {figure.ratio or 0:.2f} against the target of >= {RATIO_TARGET:g}:"
        f" {'met' if figure.met else 'NOT met'}"
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
    for name, fraction, goal in (
        ("p50", 0.5, None),
        ("p95", 0.95, None),
        ("p99", 0.99, P99_TARGET_MS),
    ):
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
    if target:
        p99 = percentile(latencies, 0.99)
        met = "met" if p99 <= P99_TARGET_MS else "NOT met"
        report.notes.append(
            f"3 end to end: p99 {p99:.1f} ms at {rate:g} orders/s against the target of"
            f" <= {P99_TARGET_MS:g} ms at 200 orders/s: {met}"
        )

"""Benchmark 2: worker throughput, de-duplicated by a position per (group, partition).

Each run starts from ``events`` OrderPlaced entries waiting on the partition
streams (for real PENDING orders with stock), with the explicit ids the relay
gives them (``<sequence>-0``, counted per partition), a fresh consumer group
and no positions, and times until the group has acknowledged them all:

* floor: a hand-written consumer on raw asyncpg and redis-py: ``XREADGROUP``
  of a batch over every partition, then per partition's run of entries one
  transaction holding only the fenced position ``UPDATE``, then one
  ``XACK``; as many partitions side by side as the consumer
  (``worker_partition_concurrency``), each on a connection of its own. The
  least any exactly-once consumer of this design does per event;
* no-op: :func:`storefront.events.consumer.run_consumer` with a registry whose
  handler does nothing: the consumer's own cost (leases, parsing, the
  position, delivery bookkeeping);
* inventory: the same consumer with the real inventory handlers, reserving
  stock and emitting ``StockReserved`` in the run's transaction. Its rate has
  an absolute target (1,000 events/s).

Statements and round trips per event are counted on the consumer's engine
with SQLAlchemy events (client side; pg_stat_statements is not assumed): a
statement is a ``before_cursor_execute``; its round trips are that statement,
plus a Parse the first time a (connection, statement) pair is seen when the
statement cache is on (every time when off), plus each transaction's
``BEGIN`` and ``COMMIT``/``ROLLBACK``, plus each pool pre-ping, which the
asyncpg dialect sends as ``BEGIN``, ``;``, ``ROLLBACK``: three.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from redis.typing import KeyT, StreamIdT
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.database import UnitOfWork, create_engine
from storefront.adapters.redis import RedisClient, create_redis
from storefront.events.consumer import ConsumerStats, run_consumer
from storefront.events.delivery import Entry, read_reply
from storefront.events.envelope import Event
from storefront.events.groups import ensure_groups
from storefront.events.handlers import HandlerRegistry
from storefront.events.partitions import partition_of, stream_key
from storefront.events.positions import entry_id
from storefront.inventory.handlers import inventory_handlers
from storefront.orders.events import OrderPlaced
from storefront.settings import Settings
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.fixtures import placed_events, seed_orders, seed_products
from storefront_dev.bench.measure import Figure, Report, interleaved_async, median

__all__ = ["INVENTORY_TARGET", "RoundTrips", "bench_worker", "count_round_trips", "noop_handlers"]

noop_handlers = HandlerRegistry("bench-noop")
_FLOOR_GROUP = "bench-floor"
# The inventory worker's absolute target, events per second.
INVENTORY_TARGET = 1_000.0
# The asyncpg dialect's pre-ping outside a transaction: BEGIN, ";", ROLLBACK.
_PING_ROUND_TRIPS = 3

_START = """
INSERT INTO consumer_positions (group_name, partition, sequence)
SELECT $1, p, 0 FROM generate_series(0, $2 - 1) AS p
ON CONFLICT DO NOTHING
"""
# Fenced like the consumer's: a reader that lost its partition moves nothing.
_ADVANCE = """
UPDATE consumer_positions SET sequence = $4, updated_at = now()
WHERE group_name = $1 AND partition = $2 AND sequence = $3
"""


@noop_handlers.on(OrderPlaced)
async def _ignore(payload: OrderPlaced, event: Event, uow: UnitOfWork) -> Sequence[Event]:
    return []


@dataclass
class RoundTrips:
    """PostgreSQL statements and round trips an engine made, counted client side."""

    statements: int = 0
    parses: int = 0
    transactions: int = 0  # BEGIN ... COMMIT/ROLLBACK pairs: two round trips each
    pings: int = 0

    @property
    def round_trips(self) -> int:
        return (
            self.statements + self.parses + 2 * self.transactions + _PING_ROUND_TRIPS * self.pings
        )

    def reset(self) -> None:
        self.statements = self.parses = self.transactions = self.pings = 0


def count_round_trips(engine: AsyncEngine, *, statement_cache: bool) -> RoundTrips:
    """Count what ``engine`` sends from now on (listeners stay for its lifetime)."""
    counts = RoundTrips()
    sync = engine.sync_engine
    prepared: set[tuple[int, str]] = set()

    def before_cursor_execute(
        connection: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        counts.statements += 1
        key = (id(connection.connection.dbapi_connection), statement)
        if not statement_cache or key not in prepared:
            counts.parses += 1
            prepared.add(key)

    def ended(connection: Any) -> None:
        counts.transactions += 1

    event.listen(sync, "before_cursor_execute", before_cursor_execute)
    event.listen(sync, "commit", ended)
    event.listen(sync, "rollback", ended)
    dialect = sync.dialect
    do_ping = dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        counts.pings += 1
        return do_ping(dbapi_connection)

    dialect.do_ping = counted_ping  # type: ignore[method-assign]
    return counts


def _streams(settings: Settings) -> list[str]:
    return [
        stream_key(settings.redis_key_prefix, partition)
        for partition in range(settings.event_partitions)
    ]


async def _publish(redis: RedisClient, settings: Settings, events: Sequence[Event]) -> None:
    """The events on their partitions' streams, as the relay would have put them:
    each with its partition's next sequence number as its id, ``<sequence>-0``."""
    await redis.delete(*_streams(settings))
    sequences = [0] * settings.event_partitions
    async with redis.pipeline(transaction=False) as pipe:
        for outbox_id, placed in enumerate(events, start=1):
            partition = partition_of(placed.aggregate_id, settings.event_partitions)
            sequences[partition] += 1
            pipe.xadd(
                stream_key(settings.redis_key_prefix, partition),
                {"envelope": placed.model_dump_json(), "outbox_id": outbox_id},
                id=entry_id(sequences[partition]),
            )
        await pipe.execute()


async def _outstanding(redis: RedisClient, settings: Settings, group: str) -> int:
    """Entries of ``group`` not acknowledged yet: unread (lag) plus pending."""
    async with redis.pipeline(transaction=False) as pipe:
        for stream in _streams(settings):
            pipe.xinfo_groups(stream)
        replies = await pipe.execute()
    total = 0
    for groups in replies:
        for info in groups:
            if info["name"] in (group, group.encode()):
                total += int(info["pending"]) + int(info["lag"] or 0)
    return total


async def _until_done(redis: RedisClient, settings: Settings, group: str) -> None:
    # Polled every 20 ms: the watching costs the consumer little, and the
    # measured time is at most 20 ms longer than the work.
    while await _outstanding(redis, settings, group):  # noqa: ASYNC110 (polling Redis)
        await asyncio.sleep(0.02)


async def _floor_consumer(
    connections: Sequence[asyncpg.Connection],
    redis: RedisClient,
    settings: Settings,
    stop: asyncio.Event,
) -> int:
    """The hand-written floor (see the module's docstring); its transactions."""
    partitions = settings.event_partitions
    by_stream = {stream: partition for partition, stream in enumerate(_streams(settings))}
    await connections[0].execute(_START, _FLOOR_GROUP, partitions)
    positions = dict.fromkeys(range(partitions), 0)
    transactions = 0
    free: asyncio.Queue[asyncpg.Connection] = asyncio.Queue()
    for connection in connections:
        free.put_nowait(connection)

    async def apply(stream: str, entries: list[Entry]) -> None:
        nonlocal transactions
        partition = by_stream[stream]
        start = positions[partition]
        fresh = [entry for entry in entries if entry.sequence > start]
        for entry in fresh:
            json.loads(entry.fields[b"envelope"])  # any consumer reads its events
        if fresh:
            connection = await free.get()
            try:
                async with connection.transaction():
                    moved = await connection.execute(
                        _ADVANCE, _FLOOR_GROUP, partition, start, fresh[-1].sequence
                    )
            finally:
                free.put_nowait(connection)
            if moved != "UPDATE 1":
                raise RuntimeError(f"floor lost partition {partition}")
            positions[partition] = fresh[-1].sequence
            transactions += 1
        await redis.xack(stream, _FLOOR_GROUP, *[entry.id for entry in entries])

    streams: dict[KeyT, StreamIdT] = dict.fromkeys(_streams(settings), ">")
    while not stop.is_set():
        reply = await redis.xreadgroup(
            _FLOOR_GROUP, "floor", streams, count=settings.worker_batch_size, block=50
        )
        await asyncio.gather(*(apply(stream, entries) for stream, entries in read_reply(reply)))
    return transactions


@dataclass
class _Run:
    rate: float
    stats: ConsumerStats | None = None
    statements: int = 0
    round_trips: int = 0


async def bench_worker(env: BenchEnvironment, report: Report, *, events: int, repeats: int) -> None:
    # A short block: when the work is done the consumer notices within 50 ms.
    settings = env.settings_of("InventoryWorkerFunction").model_copy(update={"worker_block_ms": 50})
    engine = create_engine(settings)
    counts = count_round_trips(engine, statement_cache=settings.database_statement_cache)
    redis = create_redis(settings)
    admin = await asyncpg.connect(env.database_url)
    floor_connections = [
        await asyncpg.connect(env.database_url)
        for _ in range(settings.worker_partition_concurrency)
    ]
    products = await seed_products(admin, 20, on_hand=1_000_000_000)
    orders = await seed_orders(admin, events, products)
    bench = _WorkerBench(
        settings, engine, counts, redis, admin, floor_connections, placed_events(orders), events
    )
    try:
        samples = await interleaved_async(
            {
                "floor": bench.floor,
                "noop": bench.consumer("noop", noop_handlers),
                "inventory": bench.consumer("inventory", inventory_handlers.for_group("inventory")),
            },
            repeats,
        )
    finally:
        await bench.close()
    floor_rate, noop_rate, inventory_rate = (
        median(samples[name]) for name in ("floor", "noop", "inventory")
    )
    _report(report, bench.runs, events, repeats, floor_rate, noop_rate, inventory_rate)


@dataclass
class _WorkerBench:
    """What every run of :func:`bench_worker` shares, and the runs so far."""

    settings: Settings
    engine: AsyncEngine
    counts: RoundTrips
    redis: RedisClient
    admin: asyncpg.Connection
    floor_connections: list[asyncpg.Connection]
    placed: list[Event]
    events: int
    runs: dict[str, list[_Run]] = field(
        default_factory=lambda: {"floor": [], "noop": [], "inventory": []}
    )

    async def reset(self, group: str) -> None:
        await self.admin.execute(
            "TRUNCATE event_partitions, consumer_positions, dead_letters, outbox,"
            " stock_reservations"
        )
        await self.admin.execute("UPDATE stock_levels SET reserved = 0")
        await _publish(self.redis, self.settings, self.placed)
        await ensure_groups(self.redis, self.settings, [group])

    async def timed(
        self, group: str, consume: Callable[[asyncio.Event], Coroutine[Any, Any, object]]
    ) -> tuple[float, object]:
        await self.reset(group)
        self.counts.reset()
        stop = asyncio.Event()
        started = time.perf_counter()
        task: asyncio.Task[object] = asyncio.create_task(consume(stop))
        try:
            await _until_done(self.redis, self.settings, group)
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            outcome = await task
        # Every partition's sequences run 1..n, so the positions add up to the events.
        settled = await self.admin.fetchval(
            "SELECT coalesce(sum(sequence), 0) FROM consumer_positions WHERE group_name = $1",
            group,
        )
        if settled != self.events:
            raise RuntimeError(f"{group} settled {settled} of {self.events} events")
        return self.events / elapsed, outcome

    def consumer(self, name: str, registry: HandlerRegistry) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            async def consume(stop: asyncio.Event) -> ConsumerStats:
                def remaining_ms() -> int:
                    return 0 if stop.is_set() else 600_000

                return await run_consumer(
                    registry, self.engine, self.redis, self.settings, remaining_ms
                )

            rate, stats = await self.timed(registry.consumer, consume)
            assert isinstance(stats, ConsumerStats)
            if stats.handled != self.events:
                raise RuntimeError(f"{registry.consumer} handled {stats.handled} of {self.events}")
            self.runs[name].append(
                _Run(rate, stats, self.counts.statements, self.counts.round_trips)
            )
            return rate

        return run

    async def floor(self) -> float:
        rate, transactions = await self.timed(
            _FLOOR_GROUP,
            lambda stop: _floor_consumer(self.floor_connections, self.redis, self.settings, stop),
        )
        assert isinstance(transactions, int)
        # One statement per transaction, and its BEGIN and COMMIT.
        stats = ConsumerStats(handled=self.events, transactions=transactions)
        self.runs["floor"].append(_Run(rate, stats, transactions, 3 * transactions))
        return rate

    async def close(self) -> None:
        await self.redis.delete(*_streams(self.settings))
        await self.admin.execute(
            "TRUNCATE event_partitions, consumer_positions, dead_letters, outbox,"
            " stock_reservations, orders CASCADE"
        )
        for connection in (self.admin, *self.floor_connections):
            await connection.close()
        await self.redis.aclose()
        await self.engine.dispose()


def _per_event(runs: list[_Run], events: int) -> tuple[float, float, float]:
    """Median statements, round trips and transactions per event over ``runs``."""
    return (
        median([run.statements / events for run in runs]),
        median([run.round_trips / events for run in runs]),
        median([(run.stats.transactions if run.stats else 0) / events for run in runs]),
    )


def _report(
    report: Report,
    runs: dict[str, list[_Run]],
    events: int,
    repeats: int,
    floor_rate: float,
    noop_rate: float,
    inventory_rate: float,
) -> None:
    counted = "counted with SQLAlchemy before_cursor_execute/commit/rollback and pre-ping hooks"
    per_event = {name: _per_event(runs[name], events) for name in runs}
    floor_statements, floor_round_trips, _ = per_event["floor"]
    report.add(
        Figure(
            "2 worker",
            "consumer, no-op handler",
            noop_rate,
            "events/s",
            reference="hand-written position consumer",
            reference_value=floor_rate,
            better="higher",
            samples=repeats,
            note=(
                f"floor: {floor_statements:.3f} statements and {floor_round_trips:.3f} round"
                " trips per event (BEGIN, the position UPDATE, COMMIT per run)"
            ),
        )
    )
    report.add(
        Figure(
            "2 worker",
            "consumer, inventory handlers",
            inventory_rate,
            "events/s",
            reference="no-op handler",
            reference_value=noop_rate,
            better="higher",
            samples=repeats,
        )
    )
    report.add(
        Figure(
            "2 worker",
            "inventory handlers, absolute",
            inventory_rate,
            "events/s",
            target=INVENTORY_TARGET,
            better="higher",
            samples=repeats,
        )
    )
    for name, label in (("noop", "no-op handler"), ("inventory", "inventory handlers")):
        statements, round_trips, transactions = per_event[name]
        for figure, value in (("statements", statements), ("round trips", round_trips)):
            report.add(
                Figure(
                    "2 worker",
                    f"{label}, PostgreSQL {figure}/event",
                    value,
                    f"{figure}/event",
                    samples=repeats,
                    note=counted,
                )
            )
        last = runs[name][-1].stats or ConsumerStats()
        report.notes.append(
            f"2 worker, {label}: {statements:.2f} statements, {round_trips:.2f} round trips and"
            f" {transactions:.3f} transactions per event over {events:,} events ({counted});"
            f" last run's consumer stats: {last.transactions} transactions,"
            f" {last.conflicts} runs redone one by one after a deadlock,"
            f" {last.failures} failures, {last.reads} reads"
        )
    report.notes.append(
        f"2 worker: inventory handlers {inventory_rate:,.0f} events/s against the target of"
        f" >= {INVENTORY_TARGET:,.0f} events/s:"
        f" {'met' if inventory_rate >= INVENTORY_TARGET else 'NOT met'}"
    )

"""Benchmark 2: worker throughput with inbox de-duplication.

Each run starts from ``events`` OrderPlaced entries waiting on the partition
streams (for real PENDING orders with stock), a fresh consumer group and an
empty inbox, and times until the group has acknowledged them all:

* floor: a hand-written consumer on raw asyncpg and redis-py, reading 100
  entries at a time and recording each event in the inbox in its own
  transaction: the least any exactly-once consumer does per event;
* no-op: :func:`storefront.events.consumer.run_consumer` with a registry whose
  handler does nothing: the consumer's own cost (leases, parsing, the inbox
  row, delivery bookkeeping);
* inventory: the same consumer with the real inventory handlers, reserving
  stock and emitting ``StockReserved`` in the same transaction.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import asyncpg
from redis.typing import KeyT, StreamIdT

from storefront.adapters.database import UnitOfWork, create_engine
from storefront.adapters.redis import RedisClient, create_redis
from storefront.events.consumer import run_consumer
from storefront.events.delivery import read_reply
from storefront.events.envelope import Event
from storefront.events.groups import ensure_groups
from storefront.events.handlers import HandlerRegistry
from storefront.events.partitions import partition_of, stream_key
from storefront.inventory.handlers import inventory_handlers
from storefront.orders.events import OrderPlaced
from storefront.settings import Settings
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.fixtures import placed_events, seed_orders, seed_products
from storefront_dev.bench.measure import Figure, Report, interleaved_async, median

__all__ = ["bench_worker", "noop_handlers"]

noop_handlers = HandlerRegistry("bench-noop")
_FLOOR_GROUP = "bench-floor"


@noop_handlers.on(OrderPlaced)
async def _ignore(payload: OrderPlaced, event: Event, uow: UnitOfWork) -> Sequence[Event]:
    return []


def _streams(settings: Settings) -> list[str]:
    return [
        stream_key(settings.redis_key_prefix, partition)
        for partition in range(settings.event_partitions)
    ]


async def _publish(redis: RedisClient, settings: Settings, events: Sequence[Event]) -> None:
    """The events on their partitions' streams, as the relay would have put them."""
    await redis.delete(*_streams(settings))
    async with redis.pipeline(transaction=False) as pipe:
        for outbox_id, event in enumerate(events, start=1):
            partition = partition_of(event.aggregate_id, settings.event_partitions)
            pipe.xadd(
                stream_key(settings.redis_key_prefix, partition),
                {"envelope": event.model_dump_json(), "outbox_id": outbox_id},
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
    connection: asyncpg.Connection, redis: RedisClient, settings: Settings, stop: asyncio.Event
) -> None:
    streams: dict[KeyT, StreamIdT] = dict.fromkeys(_streams(settings), ">")
    while not stop.is_set():
        reply = await redis.xreadgroup(
            _FLOOR_GROUP, "floor", streams, count=settings.worker_batch_size, block=50
        )
        for stream, entries in read_reply(reply):
            for entry in entries:
                event_id = json.loads(entry.fields[b"envelope"])["event_id"]
                async with connection.transaction():
                    await connection.fetchval(
                        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2)"
                        " ON CONFLICT DO NOTHING RETURNING event_id",
                        _FLOOR_GROUP,
                        event_id,
                    )
            await redis.xack(stream, _FLOOR_GROUP, *[entry.id for entry in entries])


async def bench_worker(env: BenchEnvironment, report: Report, *, events: int, repeats: int) -> None:
    # A short block: when the work is done the consumer notices within 50 ms.
    settings = env.settings_of("InventoryWorkerFunction").model_copy(update={"worker_block_ms": 50})
    engine = create_engine(settings)
    redis = create_redis(settings)
    admin = await asyncpg.connect(env.database_url)
    floor_connection = await asyncpg.connect(env.database_url)
    products = await seed_products(admin, 20, on_hand=1_000_000_000)
    orders = await seed_orders(admin, events, products)
    placed = placed_events(orders)

    async def reset(group: str) -> None:
        await admin.execute("TRUNCATE inbox, outbox, stock_reservations")
        await admin.execute("UPDATE stock_levels SET reserved = 0")
        await _publish(redis, settings, placed)
        await ensure_groups(redis, settings, [group])

    async def timed(
        group: str, consume: Callable[[asyncio.Event], Coroutine[Any, Any, object]]
    ) -> float:
        await reset(group)
        stop = asyncio.Event()
        started = time.perf_counter()
        task: asyncio.Task[object] = asyncio.create_task(consume(stop))
        try:
            await _until_done(redis, settings, group)
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            await task
        handled = await admin.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", group)
        if handled != events:
            raise RuntimeError(f"{group} recorded {handled} of {events} events")
        return events / elapsed

    def consumer(registry: HandlerRegistry) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            async def consume(stop: asyncio.Event) -> object:
                def remaining_ms() -> int:
                    return 0 if stop.is_set() else 600_000

                return await run_consumer(registry, engine, redis, settings, remaining_ms)

            return await timed(registry.consumer, consume)

        return run

    async def floor() -> float:
        return await timed(
            _FLOOR_GROUP, lambda stop: _floor_consumer(floor_connection, redis, settings, stop)
        )

    try:
        samples = await interleaved_async(
            {
                "floor": floor,
                "noop": consumer(noop_handlers),
                "inventory": consumer(inventory_handlers),
            },
            repeats,
        )
    finally:
        await redis.delete(*_streams(settings))
        await admin.execute("TRUNCATE inbox, outbox, stock_reservations, orders CASCADE")
        for connection in (admin, floor_connection):
            await connection.close()
        await redis.aclose()
        await engine.dispose()
    floor_rate, noop_rate, inventory_rate = (
        median(samples[name]) for name in ("floor", "noop", "inventory")
    )
    report.add(
        Figure(
            "2 worker",
            "consumer, no-op handler",
            noop_rate,
            "events/s",
            reference="hand-written inbox consumer",
            reference_value=floor_rate,
            better="higher",
            samples=repeats,
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

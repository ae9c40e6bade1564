"""The outbox relay on real PostgreSQL and Redis.

Order per aggregate, no gaps, no losses, one relay per partition at a time.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storefront.adapters.database import asyncpg_url, create_engine
from storefront.adapters.redis import RedisClient, create_redis
from storefront.events.envelope import Event, Payload
from storefront.events.outbox import add_events, outbox
from storefront.events.partitions import partition_of, stream_key
from storefront.events.relay import RELAY_LOCK_CLASS, oldest_unpublished_age_seconds, relay_once
from storefront.events.relay_loop import run_relay
from storefront.observability import metrics
from storefront.resources import Resources
from storefront.settings import Settings
from tests.integration.streams import StreamEntries


class TestHappened(Payload):
    __test__: ClassVar[bool] = False  # a payload, not a pytest test class

    event_type: ClassVar[str] = "TestHappened"
    aggregate_type: ClassVar[str] = "Test"

    seq: int


@pytest.fixture(autouse=True)
async def empty_outbox(resources: Resources) -> None:
    async with resources.engine.begin() as connection:
        await connection.execute(text("TRUNCATE outbox"))


@pytest.fixture
def engine(resources: Resources) -> AsyncEngine:
    return resources.engine


@pytest.fixture
def redis(resources: Resources) -> RedisClient:
    return resources.redis


def happened(aggregate_id: str, seq: int) -> Event:
    return Event.of(TestHappened(seq=seq), aggregate_id)


async def write(engine: AsyncEngine, settings: Settings, events: Sequence[Event]) -> None:
    async with engine.begin() as connection:
        await add_events(connection, events, settings.event_partitions)


def same_partition(count: int, partitions: int) -> list[str]:
    """Aggregate ids that all hash to one partition."""
    candidates = (f"agg-{n}" for n in range(10_000))
    first = next(candidates)
    wanted = partition_of(first, partitions)
    return [first, *[c for c in candidates if partition_of(c, partitions) == wanted][: count - 1]]


async def streamed(redis: RedisClient, settings: Settings) -> dict[int, list[tuple[int, Event]]]:
    """Every partition stream's entries as (outbox id, event), in stream order."""
    streams: dict[int, list[tuple[int, Event]]] = {}
    for partition in range(settings.event_partitions):
        entries = cast(
            StreamEntries, await redis.xrange(stream_key(settings.redis_key_prefix, partition))
        )
        streams[partition] = [
            (int(fields[b"outbox_id"]), Event.model_validate_json(fields[b"envelope"]))
            for _, fields in entries
        ]
    return streams


def by_aggregate(streams: dict[int, list[tuple[int, Event]]]) -> dict[str, list[int]]:
    """Each aggregate's payload seq numbers in the order its stream holds them."""
    seqs: dict[str, list[int]] = {}
    for entries in streams.values():
        for _, event in entries:
            seqs.setdefault(event.aggregate_id, []).append(event.payload["seq"])
    return seqs


async def unpublished(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
    return int(count or 0)


async def outbox_ids(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(outbox.c.event_id, outbox.c.id))
        return {str(event_id): row_id for event_id, row_id in rows}


async def test_relays_every_row_once_in_id_order_to_its_partition_stream(
    engine: AsyncEngine, redis: RedisClient, settings: Settings
) -> None:
    events = [happened(f"order-{n % 10}", n // 10) for n in range(40)]
    for chunk in range(0, 40, 8):
        await write(engine, settings, events[chunk : chunk + 8])

    stats = await relay_once(engine, redis, settings)
    again = await relay_once(engine, redis, settings)

    assert (stats.relayed, again.relayed) == (40, 0)
    assert await unpublished(engine) == 0
    ids = await outbox_ids(engine)
    streams = await streamed(redis, settings)
    relayed = [event for entries in streams.values() for _, event in entries]
    assert sorted(str(e.event_id) for e in relayed) == sorted(str(e.event_id) for e in events)
    for partition, entries in streams.items():
        assert [row_id for row_id, _ in entries] == sorted(row_id for row_id, _ in entries)
        for row_id, event in entries:
            assert partition_of(event.aggregate_id, settings.event_partitions) == partition
            assert ids[str(event.event_id)] == row_id
    # the envelope travels exactly as the outbox row holds it: PostgreSQL's
    # text of the JSONB, never decoded and re-encoded on the way
    raw = cast(StreamEntries, await redis.xrange(stream_key(settings.redis_key_prefix, 0), count=1))
    fields = raw[0][1]
    async with engine.connect() as connection:
        stored = await connection.scalar(
            text("SELECT envelope::text FROM outbox WHERE id = :id"),
            {"id": int(fields[b"outbox_id"])},
        )
    assert fields[b"envelope"].decode() == stored


async def test_many_aggregates_keep_their_order_through_small_batches(
    engine: AsyncEngine, redis: RedisClient, settings: Settings
) -> None:
    small = settings.model_copy(update={"relay_batch_size": 3, "event_partitions": 4})
    aggregates = [f"cart-{n}" for n in range(7)]
    for seq in range(6):
        for aggregate_id in aggregates:
            await write(engine, small, [happened(aggregate_id, seq)])

    stats = await relay_once(engine, redis, small)

    assert stats.relayed == 42
    assert stats.largest_batch == 3
    shares = Counter(partition_of(a, small.event_partitions) for a in aggregates)
    assert stats.batches == sum(math.ceil(6 * n / 3) for n in shares.values())
    assert by_aggregate(await streamed(redis, small)) == {a: list(range(6)) for a in aggregates}


async def test_a_lower_id_that_commits_last_is_relayed_too(
    engine: AsyncEngine, redis: RedisClient, settings: Settings
) -> None:
    slow_id, fast_id = same_partition(2, settings.event_partitions)
    slow, fast = happened(slow_id, 0), happened(fast_id, 0)

    async with engine.connect() as slow_writer:
        await slow_writer.begin()
        await add_events(slow_writer, [slow], settings.event_partitions)  # takes the lower id
        await write(engine, settings, [fast])  # the higher id commits first

        before = await relay_once(engine, redis, settings)
        await slow_writer.commit()
    after = await relay_once(engine, redis, settings)

    ids = await outbox_ids(engine)
    assert ids[str(slow.event_id)] < ids[str(fast.event_id)]
    assert (before.relayed, after.relayed) == (1, 1)
    partition = partition_of(slow_id, settings.event_partitions)
    entries = (await streamed(redis, settings))[partition]
    assert [event.event_id for _, event in entries] == [fast.event_id, slow.event_id]
    assert await unpublished(engine) == 0


async def test_a_crash_between_xadd_and_commit_is_adopted_not_appended_twice(
    engine: AsyncEngine, redis: RedisClient, settings: Settings
) -> None:
    events = [happened(f"order-{n % 3}", n // 3) for n in range(9)]
    await write(engine, settings, events)

    async def die() -> None:
        raise RuntimeError("relay killed after XADD")

    with pytest.raises(RuntimeError, match="killed"):
        await relay_once(engine, redis, settings, after_xadd=die)
    assert await unpublished(engine) == 9
    crashed = await streamed(redis, settings)
    appended = sum(len(entries) for entries in crashed.values())
    assert appended >= 1  # the XADD did happen

    stats = await relay_once(engine, redis, settings)

    # The dead relay's entries are recognised and its rows marked published...
    assert stats.repairs.adopted == appended
    assert stats.relayed == 9 - appended
    assert await unpublished(engine) == 0
    streams = await streamed(redis, settings)
    delivered = [event.event_id for entries in streams.values() for _, event in entries]
    # ...so every event is on its stream exactly once, each aggregate in order.
    assert sorted(map(str, delivered)) == sorted(str(event.event_id) for event in events)
    for entries in streams.values():
        assert all(seqs == sorted(seqs) for seqs in by_aggregate({0: entries}).values())


async def test_a_partition_held_by_one_relay_is_skipped_by_another(
    engine: AsyncEngine, redis: RedisClient, settings: Settings
) -> None:
    aggregates = same_partition(3, settings.event_partitions)
    partition = partition_of(aggregates[0], settings.event_partitions)
    for seq in range(4):
        await write(engine, settings, [happened(a, seq) for a in aggregates])
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_the_partition() -> None:
        holding.set()
        await release.wait()

    first = asyncio.create_task(relay_once(engine, redis, settings, after_xadd=hold_the_partition))
    try:
        async with asyncio.timeout(30):  # a hang guard, not a speed check
            await holding.wait()
            second = await relay_once(engine, redis, settings)
    finally:
        # Let the first relay finish either way, so no row stays locked.
        release.set()
        first_stats = await first

    assert second.skipped_partitions == [partition]
    assert second.relayed == 0
    assert first_stats.relayed == 12
    entries = (await streamed(redis, settings))[partition]
    assert len(entries) == 12  # each row once
    assert by_aggregate({partition: entries}) == {a: [0, 1, 2, 3] for a in aggregates}


async def test_concurrent_writers_and_relays_keep_commit_order_exactly_once(
    settings: Settings, database_url: str
) -> None:
    relay_settings = settings.model_copy(
        update={"relay_batch_size": 7, "event_partitions": 4, "relay_poll_seconds": 0.1}
    )
    writers_engine = create_async_engine(asyncpg_url(database_url), pool_size=4)
    relays = [(create_engine(relay_settings), create_redis(relay_settings)) for _ in range(2)]
    aggregates = [f"order-{n}" for n in range(6)]
    writers_done = asyncio.Event()

    async def write_in_commit_order(aggregate_id: str) -> None:
        async with writers_engine.begin() as connection:
            # Stands in for the aggregate row lock the services take: the
            # aggregate's next event is numbered, and gets its outbox id, only
            # once the previous one has committed.
            await connection.execute(
                select(func.pg_advisory_xact_lock(func.hashtext(aggregate_id)))
            )
            seq = await connection.scalar(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.aggregate_id == aggregate_id)
            )
            await add_events(
                connection, [happened(aggregate_id, int(seq or 0))], relay_settings.event_partitions
            )

    async def writer(rng: random.Random) -> None:
        for _ in range(40):
            await write_in_commit_order(rng.choice(aggregates))

    def remaining() -> int:
        return 0 if writers_done.is_set() else 60_000

    try:
        async with asyncio.timeout(120):  # a hang guard, not a speed check
            loops = [
                asyncio.create_task(run_relay(e, r, relay_settings, remaining)) for e, r in relays
            ]
            await asyncio.gather(*(writer(random.Random(n)) for n in range(4)))
            writers_done.set()
            stats = await asyncio.gather(*loops)
            engine, redis = relays[0]
            drained = await relay_once(engine, redis, relay_settings)
        streams = await streamed(redis, relay_settings)
    finally:
        await writers_engine.dispose()
        for engine, redis in relays:
            await engine.dispose()
            await redis.aclose()

    assert sum(s.relayed for s in stats) + drained.relayed == 160
    event_ids = [event.event_id for entries in streams.values() for _, event in entries]
    assert len(event_ids) == len(set(event_ids)) == 160  # exactly once
    for aggregate_id, seqs in by_aggregate(streams).items():
        assert seqs == list(range(len(seqs))), aggregate_id


async def test_loop_mode_wakes_on_notify_and_returns_when_the_budget_ends(
    engine: AsyncEngine, redis: RedisClient, settings: Settings
) -> None:
    # A 30 s poll in a 3 s budget: only the NOTIFY can get the row relayed in time.
    looping = settings.model_copy(
        update={"relay_mode": "loop", "relay_poll_seconds": 30.0, "time_budget_margin_ms": 500}
    )
    deadline = time.monotonic() + 3.5

    def remaining() -> int:
        return int((deadline - time.monotonic()) * 1000)

    waiting = asyncio.Event()
    event = happened("order-late", 0)
    async with asyncio.timeout(30):  # a hang guard, not a speed check
        run = asyncio.create_task(run_relay(engine, redis, looping, remaining, on_wait=waiting.set))
        await waiting.wait()  # the first pass found nothing; the loop now waits
        await write(engine, looping, [event])
        stats = await run

    assert remaining() <= looping.time_budget_margin_ms  # it used the budget, no more
    assert stats.relayed == 1
    assert stats.passes >= 2
    streams = await streamed(redis, looping)
    partition = partition_of("order-late", looping.event_partitions)
    assert [e.event_id for _, e in streams[partition]] == [event.event_id]
    assert await unpublished(engine) == 0


async def test_single_mode_makes_one_pass_through_full_batches(
    engine: AsyncEngine, redis: RedisClient, settings: Settings
) -> None:
    single = settings.model_copy(update={"relay_mode": "single", "relay_batch_size": 2})
    await write(engine, single, [happened("order-1", seq) for seq in range(5)])
    calls: list[int] = []

    def remaining() -> int:
        calls.append(1)
        return 60_000  # never runs out: only the mode ends the invocation

    async with asyncio.timeout(30):  # a hang guard, not a speed check
        stats = await run_relay(engine, redis, single, remaining)

    assert (stats.passes, stats.relayed, stats.batches, stats.largest_batch) == (1, 5, 3, 2)
    assert by_aggregate(await streamed(redis, single)) == {"order-1": [0, 1, 2, 3, 4]}


async def test_invocation_metrics_include_the_oldest_unpublished_age(
    engine: AsyncEngine, redis: RedisClient, settings: Settings
) -> None:
    single = settings.model_copy(update={"relay_mode": "single"})
    await write(engine, single, [happened("order-1", 0), happened("order-2", 0)])
    assert await oldest_unpublished_age_seconds(engine) >= 0
    relayed_stats = await _run_and_collect(engine, redis, single)

    assert relayed_stats["EventsRelayed"] == 2.0
    assert relayed_stats["RelayBatchSize"] >= 1.0
    assert relayed_stats["OutboxOldestUnpublishedAgeSeconds"] == 0.0

    # a row the relay cannot publish (another relay holds its partition) keeps ageing
    await write(engine, single, [happened("order-3", 0)])
    async with engine.begin() as connection:
        await connection.execute(
            update(outbox).values(created_at=func.now() - text("interval '5 minutes'"))
        )
    held = partition_of("order-3", single.event_partitions)
    async with engine.begin() as other_relay:
        await other_relay.execute(select(func.pg_advisory_xact_lock(RELAY_LOCK_CLASS, held)))
        stuck = await _run_and_collect(engine, redis, single)

    assert stuck["EventsRelayed"] == 0.0
    assert stuck["OutboxOldestUnpublishedAgeSeconds"] >= 300.0


async def _run_and_collect(
    engine: AsyncEngine, redis: RedisClient, settings: Settings
) -> dict[str, float]:
    metrics.clear_metrics()
    async with asyncio.timeout(30):  # a hang guard, not a speed check
        await run_relay(engine, redis, settings, lambda: 60_000)
    emf: Mapping[str, Any] = metrics.serialize_metric_set()
    metrics.clear_metrics()
    names = [m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    values = {name: emf[name] if isinstance(emf[name], list) else [emf[name]] for name in names}
    assert all(len(v) == 1 for v in values.values()), values  # one value per invocation
    return {name: float(v[0]) for name, v in values.items()}

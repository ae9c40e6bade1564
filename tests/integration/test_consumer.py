"""The stream consumer on real Redis and PostgreSQL: each event once, in aggregate order."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from storefront.adapters.database import DatabaseUnavailable
from storefront.events.consumer import ConsumerStats, run_consumer
from storefront.events.dead_letters import list_dead_letters
from storefront.events.envelope import Event
from storefront.events.groups import consumer_name, ensure_groups
from storefront.events.leases import PartitionLeases
from storefront.events.partitions import partition_of
from storefront.events.positions import sequence_of
from storefront.payments import PaymentProviderUnavailable
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.embedded import free_port
from tests.integration.pinger import (
    GROUP,
    NotOurs,
    Pinger,
    Pong,
    consume,
    pending,
    ping,
    pongs,
    settled,
)
from tests.integration.streams import (
    aggregates_on_distinct_partitions,
    budget,
    emitted,
    fast_settings,
    publish,
    stream_of,
)


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return fast_settings(settings)


async def test_handles_each_event_once_and_acks_it(resources: Resources, fast: Settings) -> None:
    a, b, c = aggregates_on_distinct_partitions(3, fast.event_partitions)
    events = [ping(aggregate, seq) for seq in range(2) for aggregate in (a, b, c)]
    for event in events:
        await publish(resources.redis, fast, event)
    pinger = Pinger()

    stats = await consume(resources, fast, pinger, budget(10, pinger.attempted(6)))

    expected = [(event.aggregate_id, int(event.payload["seq"])) for event in events]
    assert sorted(await pongs(resources)) == sorted(expected)
    answered = await emitted(resources.engine, Pong.event_type)
    assert {pong.causation_id for pong in answered} == {str(e.event_id) for e in events}
    assert stats.handled == 6
    assert await settled(resources) == 6
    assert await pending(resources.redis, fast) == 0


async def test_a_redelivered_event_changes_nothing_twice(
    resources: Resources, fast: Settings
) -> None:
    event = ping("agg-twice", 1)
    await publish(resources.redis, fast, event)
    await consume(resources, fast, Pinger(), budget(1.0))
    # Redis forgets the group's progress (a failover to a lagging replica):
    # the entry is delivered again.
    await resources.redis.xgroup_setid(stream_of(fast, "agg-twice"), GROUP, "0")

    stats = await consume(resources, fast, Pinger(), budget(1.0))

    assert await pongs(resources) == [("agg-twice", 1)]
    assert (stats.handled, stats.duplicates) == (0, 1)
    assert await pending(resources.redis, fast) == 0


async def test_another_groups_event_is_acked_and_skipped(
    resources: Resources, fast: Settings
) -> None:
    await publish(resources.redis, fast, Event.of(NotOurs(), "agg-other"))

    stats = await consume(resources, fast, Pinger(), budget(1.0))

    assert stats.skipped == 1
    assert await pending(resources.redis, fast) == 0
    assert await list_dead_letters(resources.engine) == []
    assert await settled(resources) == 1  # the position moves past it


async def test_a_failing_event_is_dead_lettered_after_max_deliveries_in_order(
    resources: Resources, fast: Settings
) -> None:
    poisoned, healthy = aggregates_on_distinct_partitions(2, fast.event_partitions)
    poison_id = await publish(resources.redis, fast, ping(poisoned, 1, fail=True))
    for seq in (2, 3):
        await publish(resources.redis, fast, ping(poisoned, seq))
    await publish(resources.redis, fast, ping(healthy, 1))
    pinger = Pinger()

    for invocation in range(1, fast.worker_max_deliveries):
        # Each invocation ends once it has tried the poison once more.
        stats = await consume(resources, fast, pinger, budget(10, pinger.attempted(1 + invocation)))
        # The later events of the poisoned aggregate wait behind it...
        assert await pongs(resources) == [(healthy, 1)], invocation
        assert stats.failures == 1
        assert await list_dead_letters(resources.engine) == []
        # ...without being charged for the deliveries they did not get.
        waiting = await resources.redis.xpending_range(
            stream_of(fast, poisoned), GROUP, "(" + poison_id, "+", 10
        )
        assert [row["times_delivered"] for row in waiting] == [0, 0]

    stats = await consume(resources, fast, pinger, budget(10, pinger.attempted(1 + 3 + 2)))

    (letter,) = await list_dead_letters(resources.engine)
    assert letter.reason == "RuntimeError: cannot answer ping 1"
    assert letter.deliveries == fast.worker_max_deliveries
    assert (letter.partition, letter.sequence) == (
        partition_of(poisoned, fast.event_partitions),
        sequence_of(poison_id),
    )
    assert letter.group == GROUP
    assert stats.dead_lettered == 1
    assert await pongs(resources) == [(healthy, 1), (poisoned, 2), (poisoned, 3)]
    assert await pending(resources.redis, fast) == 0


async def test_entries_a_crashed_consumer_left_pending_are_reclaimed(
    resources: Resources, fast: Settings
) -> None:
    quick = fast.model_copy(update={"worker_claim_min_idle_ms": 20})
    for seq in range(3):
        await publish(resources.redis, quick, ping("agg-crash", seq))
    await ensure_groups(resources.redis, quick, [GROUP])
    stream = stream_of(quick, "agg-crash")
    # A consumer under another name reads them and dies before acknowledging.
    await resources.redis.xreadgroup(GROUP, "crashed-consumer", {stream: ">"}, count=10)
    await asyncio.sleep(0.05)  # longer than the min-idle above: the entries are stale
    pinger = Pinger()

    stats = await consume(resources, quick, pinger, budget(10, pinger.attempted(3)))

    assert stats.reclaimed == 3
    assert await pongs(resources) == [("agg-crash", 0), ("agg-crash", 1), ("agg-crash", 2)]
    assert await pending(resources.redis, quick) == 0


async def test_the_next_holder_rereads_what_the_previous_one_left_pending(
    resources: Resources, fast: Settings
) -> None:
    for seq in range(3):
        await publish(resources.redis, fast, ping("agg-holder", seq))
    await ensure_groups(resources.redis, fast, [GROUP])
    stream = stream_of(fast, "agg-holder")
    # The previous lease holder read the entries and died; its lease expired.
    await resources.redis.xreadgroup(GROUP, consumer_name(GROUP), {stream: ">"}, count=2)
    await publish(resources.redis, fast, ping("agg-holder", 3))
    pinger = Pinger()

    stats = await consume(resources, fast, pinger, budget(10, pinger.attempted(4)))

    assert stats.reclaimed == 0  # not idle long enough: re-read under the stable name
    assert await pongs(resources) == [("agg-holder", seq) for seq in range(4)]
    assert await pending(resources.redis, fast) == 0


async def test_a_partition_leased_to_another_invocation_is_not_read(
    resources: Resources, fast: Settings
) -> None:
    await publish(resources.redis, fast, ping("agg-leased", 1))
    other = PartitionLeases(resources.redis, fast, GROUP)
    await other.refresh()  # another invocation holds every partition

    stats = await consume(resources, fast, Pinger(), budget(0.4))
    await other.release()
    pinger = Pinger()
    after = await consume(resources, fast, pinger, budget(10, pinger.attempted(1)))

    assert (stats.partitions_held, stats.handled, stats.reads) == (0, 0, 0)
    assert after.handled == 1


async def test_concurrent_consumers_handle_every_event_once_in_aggregate_order(
    resources: Resources, fast: Settings
) -> None:
    aggregates = [f"agg-c{n}" for n in range(6)]
    per_aggregate = 12
    total = len(aggregates) * per_aggregate
    pinger = Pinger(pause=0.002)

    async def produce() -> None:
        for seq in range(per_aggregate):
            for aggregate in aggregates:
                await publish(resources.redis, fast, ping(aggregate, seq))
            await asyncio.sleep(0.01)

    async def consume_from(delay: float, seconds: float) -> ConsumerStats:
        await asyncio.sleep(delay)
        # Each invocation ends at its own budget, or once everything is handled:
        # partitions change hands while events keep arriving.
        return await consume(resources, fast, pinger, budget(seconds, pinger.attempted(total)))

    _, *runs = await asyncio.gather(
        produce(), consume_from(0, 0.3), consume_from(0, 20), consume_from(0.15, 20)
    )

    handled = await pongs(resources)
    assert sorted(handled) == sorted((a, seq) for a in aggregates for seq in range(per_aggregate))
    for aggregate in aggregates:
        assert [seq for a, seq in handled if a == aggregate] == list(range(per_aggregate))
    assert sum(run.handled for run in runs) == total
    assert await settled(resources) == total
    assert await pending(resources.redis, fast) == 0


class CountingRedis(Redis):
    """A real client that counts the commands it sends."""

    commands: list[tuple[Any, ...]]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(args)
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


async def test_an_idle_consumer_blocks_instead_of_polling(
    resources: Resources, settings: Settings
) -> None:
    idle = fast_settings(settings, worker_block_ms=200)
    assert idle.redis_url is not None
    redis = cast(CountingRedis, CountingRedis.from_url(idle.redis_url))
    reader = cast(CountingRedis, CountingRedis.from_url(idle.redis_url, socket_timeout=5))
    redis.commands, reader.commands = [], []

    stats = await run_consumer(
        Pinger().registry, resources.engine, redis, idle, budget(1.0), reader=reader
    )
    await redis.aclose()
    await reader.aclose()

    reads = [command for command in reader.commands if command[0] == "XREADGROUP"]
    assert 1 <= len(reads) <= 10  # about budget / block; a busy loop makes thousands
    # One read of what is pending (none here, so no block), then blocking reads.
    assert [b"BLOCK" in command for command in reads] == [False] + [True] * (len(reads) - 1)
    assert len(redis.commands) <= 30
    assert stats.reads == len(reads)


async def test_an_unreachable_database_ends_the_invocation_without_charging_the_event(
    resources: Resources, fast: Settings
) -> None:
    await publish(resources.redis, fast, ping("agg-down", 1))
    nowhere = fast.model_copy(
        update={
            "database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/storefront",
            "database_connect_timeout": 1.0,
        }
    )
    down = Resources.from_settings(nowhere)
    pinger = Pinger()
    try:
        with pytest.raises(DatabaseUnavailable):
            await run_consumer(pinger.registry, down.engine, resources.redis, nowhere, budget(5))
    finally:
        await down.close()

    # Without its positions the consumer reads nothing: no delivery is charged.
    assert (
        await resources.redis.xpending_range(stream_of(fast, "agg-down"), GROUP, "-", "+", 10) == []
    )
    stats = await consume(resources, fast, pinger, budget(10, pinger.attempted(1)))
    assert stats.handled == 1


async def test_an_unreachable_dependency_never_dead_letters_the_event(
    resources: Resources, fast: Settings
) -> None:
    # The payment provider down (its breaker open): a DependencyUnavailable.
    await publish(resources.redis, fast, ping("agg-provider", 1, fail=True))
    await publish(resources.redis, fast, ping("agg-provider", 2))
    pinger = Pinger(error=PaymentProviderUnavailable)

    # Each invocation meets the outage on the event, and ends; many more
    # times than an event may be delivered.
    for invocation in range(1, fast.worker_max_deliveries + 3):
        with pytest.raises(PaymentProviderUnavailable):
            await consume(resources, fast, pinger, budget(10))
        assert pinger.attempts == [("agg-provider", 1)] * invocation

    assert await list_dead_letters(resources.engine) == []
    waiting = await resources.redis.xpending_range(
        stream_of(fast, "agg-provider"), GROUP, "-", "+", 10
    )
    assert [row["times_delivered"] for row in waiting] == [0, 0]  # never charged
    pinger.failing = False  # the provider is back
    stats = await consume(
        resources, fast, pinger, budget(10, pinger.attempted(len(pinger.attempts) + 2))
    )
    assert stats.handled == 2
    assert await pongs(resources) == [("agg-provider", 1), ("agg-provider", 2)]


async def test_a_run_handler_takes_consecutive_events_in_one_transaction(
    resources: Resources, fast: Settings
) -> None:
    for seq in range(5):
        await publish(resources.redis, fast, ping("agg-run", seq))
    pinger = Pinger(in_runs=True)

    stats = await consume(resources, fast, pinger, budget(10, pinger.attempted(5)))

    assert pinger.runs == [5]
    assert (stats.handled, stats.transactions) == (5, 1)
    assert await pongs(resources) == [("agg-run", seq) for seq in range(5)]


async def test_a_failing_event_in_a_run_keeps_the_ones_before_it(
    resources: Resources, fast: Settings
) -> None:
    for seq in range(5):
        await publish(resources.redis, fast, ping("agg-run", seq, fail=seq == 3))
    pinger = Pinger(in_runs=True)

    stats = await consume(resources, fast, pinger, budget(10, pinger.attempted(4 + 4)))

    # The run failed as a whole, then one event at a time found the culprit:
    # the three before it are committed, it and the one behind it wait.
    assert pinger.runs == [5, 1, 1, 1, 1]
    assert stats.failures == 1
    assert await pongs(resources) == [("agg-run", seq) for seq in range(3)]
    pinger.failing = False
    await consume(resources, fast, pinger, budget(10, pinger.attempted(4 + 4 + 2)))
    assert await pongs(resources) == [("agg-run", seq) for seq in range(5)]

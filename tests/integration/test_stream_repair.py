"""Redis loses stream data; PostgreSQL still has it: detection, repair, fencing.

Streams are deleted or cut back by hand here, the way a FLUSHALL, a restart
without persistence or a failover to a lagging replica leaves them; the relay
must find it, republish what no group has settled, and consumers must apply
every event once, in order.
"""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from redis.typing import EncodableT, FieldT
from sqlalchemy import select

from storefront.events.outbox import add_events, outbox
from storefront.events.partitions import partition_of, stream_key
from storefront.events.positions import entry_id, event_partitions
from storefront.events.relay import relay_once
from storefront.events.status import event_status
from storefront.resources import Resources
from storefront.settings import Settings
from tests.integration.pinger import GROUP, Pinger, consume, ping, pongs
from tests.integration.streams import StreamEntries, budget, fast_settings

AGGREGATE = "agg-repair"


@pytest.fixture
def fast(settings: Settings) -> Settings:
    # Three entries a read: a consumer can settle part of a stream.
    return fast_settings(settings, worker_batch_size=3)


async def write_pings(resources: Resources, settings: Settings, seqs: range) -> None:
    async with resources.engine.begin() as connection:
        await add_events(
            connection, [ping(AGGREGATE, seq) for seq in seqs], settings.event_partitions
        )


def stream(settings: Settings) -> str:
    return stream_key(settings.redis_key_prefix, partition_of(AGGREGATE, settings.event_partitions))


async def stream_ids(resources: Resources, settings: Settings) -> list[str]:
    entries = cast(StreamEntries, await resources.redis.xrange(stream(settings)))
    return [raw.decode() for raw, _ in entries]


async def repairs_recorded(resources: Resources) -> int:
    async with resources.engine.connect() as connection:
        return int(
            sum((await connection.execute(select(event_partitions.c.repairs))).scalars()) or 0
        )


async def test_a_stream_that_lost_everything_is_republished_from_what_is_unsettled(
    resources: Resources, fast: Settings
) -> None:
    await write_pings(resources, fast, range(6))
    await relay_once(resources.engine, resources.redis, fast)
    pinger = Pinger()
    await consume(resources, fast, pinger, budget(10, pinger.attempted(3)))
    assert len(pinger.attempts) == 3
    await resources.redis.delete(stream(fast))  # FLUSHALL, or a restart without persistence

    # The deployment's groups are the test group alone.
    stats = await relay_once(resources.engine, resources.redis, fast, groups=[GROUP])

    # Detected with no new event in the partition, and only the unsettled half sent.
    assert stats.repairs.repaired_partitions == [partition_of(AGGREGATE, fast.event_partitions)]
    assert stats.repairs.republished == 3
    # Then what came since: the three answers the handler wrote to the outbox.
    assert stats.relayed == 3
    assert await stream_ids(resources, fast) == [entry_id(n) for n in range(4, 10)]
    assert await repairs_recorded(resources) == 1
    # The group (gone with the stream) resumes from its position in PostgreSQL.
    await consume(resources, fast, pinger, budget(3, pinger.attempted(6)))
    assert await pongs(resources) == [(AGGREGATE, seq) for seq in range(6)]
    assert [seq for _, seq in pinger.attempts] == list(range(6))
    status = await event_status(resources.engine, resources.redis, fast, [GROUP])
    partition = partition_of(AGGREGATE, fast.event_partitions)
    assert status.streams[partition].repairs == 1
    assert status.groups[0].partitions[partition].settled == 6


async def test_a_stream_cut_back_by_a_failover_gets_its_suffix_again_before_new_events(
    resources: Resources, fast: Settings
) -> None:
    await write_pings(resources, fast, range(6))
    await relay_once(resources.engine, resources.redis, fast)
    # The promoted replica had the first three entries only.
    kept = cast(
        list[tuple[bytes, dict[FieldT, EncodableT]]],
        await resources.redis.xrange(stream(fast), count=3),
    )
    await resources.redis.delete(stream(fast))
    for raw_id, fields in kept:
        await resources.redis.xadd(stream(fast), fields, id=raw_id)
    await write_pings(resources, fast, range(6, 8))

    stats = await relay_once(resources.engine, resources.redis, fast)

    assert stats.repairs.republished == 3
    assert stats.relayed == 2
    assert await stream_ids(resources, fast) == [entry_id(n) for n in range(1, 9)]
    pinger = Pinger()
    await consume(resources, fast, pinger, budget(10, pinger.attempted(8)))
    assert [seq for _, seq in pinger.attempts] == list(range(8))


async def test_a_stream_that_lost_nothing_is_left_alone(
    resources: Resources, fast: Settings
) -> None:
    await write_pings(resources, fast, range(3))
    await relay_once(resources.engine, resources.redis, fast)

    stats = await relay_once(resources.engine, resources.redis, fast)

    assert stats.repairs.summary() == {
        "stream_repairs": 0,
        "events_republished": 0,
        "entries_adopted": 0,
    }
    assert await stream_ids(resources, fast) == [entry_id(n) for n in (1, 2, 3)]


async def test_a_reader_whose_lease_expired_cannot_commit_over_the_next_one(
    resources: Resources, fast: Settings
) -> None:
    short_lease = fast.model_copy(update={"worker_claim_min_idle_ms": 300})
    await write_pings(resources, short_lease, range(3))
    await relay_once(resources.engine, resources.redis, short_lease)
    # A is stuck in its handler (a frozen container) well past its lease...
    stuck = Pinger(pause=1.5)
    first = asyncio.create_task(
        consume(resources, short_lease, stuck, budget(3, stuck.attempted(1)))
    )
    await asyncio.sleep(0.6)
    assert stuck.attempts, "A should be in its handler by now"
    # ...so B takes the partition over and handles everything.
    taker = Pinger()
    taken = await consume(resources, short_lease, taker, budget(10, taker.attempted(3)))
    late = await first

    assert taken.handled == 3
    assert late.handled == 0  # A's commit was fenced by B's position
    assert await pongs(resources) == [(AGGREGATE, seq) for seq in range(3)]


async def test_events_deleted_from_the_outbox_by_hand_do_not_stall_the_relay(
    resources: Resources, fast: Settings
) -> None:
    await write_pings(resources, fast, range(3))
    await relay_once(resources.engine, resources.redis, fast)
    await resources.redis.delete(stream(fast))
    async with resources.engine.begin() as connection:
        await connection.execute(outbox.delete())  # never done by the code: by hand
    await write_pings(resources, fast, range(3, 5))

    stats = await relay_once(resources.engine, resources.redis, fast)

    # A marker at the old end, then the new events after it.
    assert stats.relayed == 2
    assert await stream_ids(resources, fast) == [entry_id(n) for n in (3, 4, 5)]
    pinger = Pinger()
    await consume(resources, fast, pinger, budget(10, pinger.attempted(2)))
    assert [seq for _, seq in pinger.attempts] == [3, 4]

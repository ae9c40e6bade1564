"""Cleanup: settled rows go, and nothing some group has not settled goes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, cast

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from storefront.events import cleanup
from storefront.events.cleanup import cleanup_job, run_cleanup
from storefront.events.envelope import Event, Payload
from storefront.events.outbox import add_events, outbox
from storefront.events.partitions import partition_of, stream_key
from storefront.events.positions import consumer_positions, entry_id
from storefront.resources import Resources
from storefront.settings import Settings
from tests.integration.streams import StreamEntries, fast_settings


class Tick(Payload):
    event_type: ClassVar[str] = "CleanupTestTick"
    aggregate_type: ClassVar[str] = "cleanup-test"
    n: int


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return fast_settings(settings, event_partitions=2)


async def add_outbox_row(
    resources: Resources, n: int, created: int, published: int | None, sequence: int | None = None
) -> None:
    """An outbox row created and published that many days ago, at ``sequence``."""
    event = Event.of(Tick(n=n), f"agg-{n}")
    async with resources.engine.begin() as connection:
        await add_events(connection, [event], 2)
        await connection.execute(
            text(
                "UPDATE outbox SET created_at = now() - CAST(:created AS interval), "
                "published_at = now() - CAST(:published AS interval), sequence = :sequence "
                "WHERE event_id = :id"
            ),
            {
                "created": timedelta(days=created),
                "published": None if published is None else timedelta(days=published),
                "sequence": sequence,
                "id": event.event_id,
            },
        )


async def settle(resources: Resources, group: str, partition: int, sequence: int) -> None:
    """Record ``group`` as having settled ``partition`` up to ``sequence``."""
    async with resources.engine.begin() as connection:
        row = {"group_name": group, "partition": partition, "sequence": sequence}
        await connection.execute(
            insert(consumer_positions)
            .values(row)
            .on_conflict_do_update(
                index_elements=["group_name", "partition"], set_={"sequence": sequence}
            )
        )


async def test_only_outbox_rows_every_group_settled_go_once_old(
    resources: Resources, fast: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cleanup, "DELETE_BATCH_SIZE", 2)  # several batches
    # Sequences are per partition: give each row the next one of its own.
    next_sequence = dict.fromkeys(range(2), 0)

    async def row(n: int, created: int, published: int | None) -> None:
        partition = partition_of(f"agg-{n}", 2)
        sequence = None
        if published is not None:
            next_sequence[partition] += 1
            sequence = next_sequence[partition]
        await add_outbox_row(resources, n, created, published, sequence)

    for n in range(5):
        await row(n, created=9, published=8)  # old and settled by both: go
    await row(10, created=2, published=1)  # settled but recent: stays
    await row(11, created=30, published=None)  # never published: stays
    await row(12, created=30, published=29)  # old, but "slow" has not settled it: stays
    for partition, last in next_sequence.items():
        await settle(resources, "fast", partition, last)
        slow_done = last - 1 if partition == partition_of("agg-12", 2) else last
        await settle(resources, "slow", partition, slow_done)

    stats = await run_cleanup(resources.engine, resources.redis, fast, groups=["fast", "slow"])

    async with resources.engine.connect() as connection:
        kept = (await connection.execute(select(outbox.c.aggregate_id))).scalars().all()
    assert sorted(kept) == ["agg-10", "agg-11", "agg-12"]
    assert stats.outbox_deleted == 5


@dataclass
class Stream:
    """One partition stream with ten entries and two groups, ``fast`` and ``slow``."""

    resources: Resources
    settings: Settings
    key: str
    ids: list[str]

    async def read(self, group: str, count: int, last_id: str = ">") -> list[str]:
        reply = cast(
            list[tuple[bytes, StreamEntries]],
            await self.resources.redis.xreadgroup(
                group, f"{group}-holder", {self.key: last_id}, count=count
            ),
        )
        return [entry_id.decode() for _, entries in reply for entry_id, _ in entries]

    async def ack(self, group: str, ids: list[str]) -> None:
        await self.resources.redis.xack(self.key, group, *ids)

    async def remaining(self) -> list[str]:
        entries = cast(StreamEntries, await self.resources.redis.xrange(self.key))
        return [entry_id.decode() for entry_id, _ in entries]


@pytest.fixture
async def stream(resources: Resources, fast: Settings) -> Stream:
    """Entries ``1-0`` to ``10-0`` on partition 0's stream, as the relay writes them."""
    key = stream_key(fast.redis_key_prefix, 0)
    ids = [entry_id(n) for n in range(1, 11)]
    for n, id_ in enumerate(ids):
        await resources.redis.xadd(key, {"envelope": f'{{"n": {n}}}'}, id=id_)
    return Stream(resources, fast, key, ids)


async def test_a_slow_group_still_gets_every_entry_it_has_not_settled(
    resources: Resources, fast: Settings, stream: Stream
) -> None:
    await settle(resources, "fast", 0, 10)
    await settle(resources, "slow", 0, 2)

    stats = await run_cleanup(resources.engine, resources.redis, fast, groups=["fast", "slow"])

    assert stats.entries_trimmed == 2  # only what both groups have settled
    assert await stream.remaining() == stream.ids[2:]


async def test_a_group_that_has_settled_nothing_holds_every_entry(
    resources: Resources, fast: Settings, stream: Stream
) -> None:
    await settle(resources, "fast", 0, 10)

    groups = ["fast", "not-run-yet"]
    stats = await run_cleanup(resources.engine, resources.redis, fast, groups=groups)

    assert stats.entries_trimmed == 0
    assert await stream.remaining() == stream.ids


async def test_settled_entries_are_trimmed_whatever_redis_remembers_of_the_groups(
    resources: Resources, fast: Settings, stream: Stream
) -> None:
    # No group exists in Redis (its state was lost); PostgreSQL says both are done.
    for group in ("fast", "slow"):
        await settle(resources, group, 0, 10)
    await resources.redis.xadd(stream.key, {"envelope": "{}"}, id=entry_id(11))  # not settled

    stats = await run_cleanup(resources.engine, resources.redis, fast, groups=["fast", "slow"])

    assert stats.entries_trimmed == 10
    assert await stream.remaining() == [entry_id(11)]


class Context:
    """The part of the Lambda context a job reads: its time budget."""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


async def test_the_scheduled_job_reports_what_it_did(
    resources: Resources, fast: Settings, stream: Stream
) -> None:
    await add_outbox_row(resources, 1, created=9, published=8, sequence=1)
    for group in ("fast", "slow"):
        await settle(resources, group, 0, 10)
        await settle(resources, group, 1, 10)
    job_resources = Resources.from_settings(fast)
    try:
        summary = await cleanup_job(["fast", "slow"])(job_resources, Context())  # type: ignore[arg-type]
    finally:
        await job_resources.close()

    assert summary["entries_trimmed"] == 10
    assert summary["outbox_deleted"] == 1
    assert summary["dead_letters"] == 0

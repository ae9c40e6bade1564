"""Cleanup: old rows go, and no stream entry goes before every group is done with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import pytest
from sqlalchemy import Interval, cast, func, insert, literal, select, text

from storefront.events import cleanup
from storefront.events.cleanup import cleanup_job, run_cleanup
from storefront.events.envelope import Event, Payload
from storefront.events.groups import ensure_groups
from storefront.events.outbox import add_events, inbox, outbox
from storefront.events.partitions import stream_key
from storefront.ids import new_id
from storefront.resources import Resources
from storefront.settings import Settings
from tests.integration.streams import fast_settings


class Tick(Payload):
    event_type: ClassVar[str] = "CleanupTestTick"
    aggregate_type: ClassVar[str] = "cleanup-test"
    n: int


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return fast_settings(settings, event_partitions=2)


async def add_outbox_row(resources: Resources, n: int, created: int, published: int | None) -> None:
    """An outbox row created and published that many days ago."""
    event = Event.of(Tick(n=n), f"agg-{n}")
    async with resources.engine.begin() as connection:
        await add_events(connection, [event], 2)
        await connection.execute(
            text(
                "UPDATE outbox SET created_at = now() - CAST(:created AS interval), "
                "published_at = now() - CAST(:published AS interval) WHERE event_id = :id"
            ),
            {
                "created": timedelta(days=created),
                "published": None if published is None else timedelta(days=published),
                "id": event.event_id,
            },
        )


async def test_old_published_outbox_and_settled_go_recent_and_unpublished_stay(
    resources: Resources, fast: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cleanup, "DELETE_BATCH_SIZE", 2)  # several batches
    for n in range(5):
        await add_outbox_row(resources, n, created=9, published=8)
    await add_outbox_row(resources, 10, created=2, published=1)
    await add_outbox_row(resources, 11, created=30, published=None)
    async with resources.engine.begin() as connection:
        for days in (8, 8, 8, 1):
            await connection.execute(
                insert(inbox).values(
                    consumer="cleanup-test",
                    event_id=new_id(),
                    processed_at=func.now() - cast(literal(timedelta(days=days)), Interval),
                )
            )

    stats = await run_cleanup(resources.engine, resources.redis, fast, groups=["cleanup-test"])

    async with resources.engine.connect() as connection:
        kept = (await connection.execute(select(outbox.c.aggregate_id))).scalars().all()
        inbox_left = (await connection.execute(select(inbox.c.processed_at))).scalars().all()
    assert sorted(kept) == ["agg-10", "agg-11"]
    assert (stats.outbox_deleted, stats.inbox_deleted) == (5, 3)
    assert len(inbox_left) == 1


@dataclass
class Stream:
    """One partition stream with ten entries and two groups, ``fast`` and ``slow``."""

    resources: Resources
    settings: Settings
    key: str
    ids: list[str]

    async def read(self, group: str, count: int, last_id: str = ">") -> list[str]:
        reply = await self.resources.redis.xreadgroup(
            group, f"{group}-holder", {self.key: last_id}, count=count
        )
        return [entry_id.decode() for _, entries in reply for entry_id, _ in entries]

    async def ack(self, group: str, ids: list[str]) -> None:
        await self.resources.redis.xack(self.key, group, *ids)

    async def remaining(self) -> list[str]:
        entries = await self.resources.redis.xrange(self.key)
        return [entry_id.decode() for entry_id, _ in entries]


@pytest.fixture
async def stream(resources: Resources, fast: Settings) -> Stream:
    key = stream_key(fast.redis_key_prefix, 0)
    await ensure_groups(resources.redis, fast, ["fast", "slow"])
    ids = []
    for n in range(10):
        entry_id = await resources.redis.xadd(key, {"envelope": f'{{"n": {n}}}'})
        ids.append(entry_id.decode())
    return Stream(resources, fast, key, ids)


async def test_a_slow_group_still_gets_every_entry_it_has_not_acked(
    resources: Resources, fast: Settings, stream: Stream
) -> None:
    await stream.ack("fast", await stream.read("fast", 10))
    slow_read = await stream.read("slow", 4)
    await stream.ack("slow", slow_read[:2])  # two handled, two still pending

    stats = await run_cleanup(resources.engine, resources.redis, fast, groups=["fast", "slow"])

    assert stats.entries_trimmed == 2  # only what both groups have acked
    assert await stream.remaining() == stream.ids[2:]
    assert await stream.read("slow", 10, last_id="0") == stream.ids[2:4]
    assert await stream.read("slow", 10) == stream.ids[4:]


async def test_a_group_that_has_read_nothing_holds_every_entry(
    resources: Resources, fast: Settings, stream: Stream
) -> None:
    await stream.ack("fast", await stream.read("fast", 10))

    stats = await run_cleanup(resources.engine, resources.redis, fast, groups=["fast", "slow"])

    assert stats.entries_trimmed == 0
    assert await stream.read("slow", 10) == stream.ids


async def test_fully_consumed_entries_are_trimmed(
    resources: Resources, fast: Settings, stream: Stream
) -> None:
    for group in ("fast", "slow"):
        await stream.ack(group, await stream.read(group, 10))
    await resources.redis.xadd(stream.key, {"envelope": "{}"})  # not delivered yet

    stats = await run_cleanup(resources.engine, resources.redis, fast, groups=["fast", "slow"])

    assert stats.entries_trimmed == 10
    assert len(await stream.read("slow", 10)) == 1


async def test_nothing_is_trimmed_while_an_expected_group_is_missing(
    resources: Resources, fast: Settings, stream: Stream
) -> None:
    for group in ("fast", "slow"):
        await stream.ack(group, await stream.read(group, 10))
    ungrouped = stream_key(fast.redis_key_prefix, 1)
    await resources.redis.delete(ungrouped)
    await resources.redis.xadd(ungrouped, {"envelope": "{}"})  # a stream with no group

    groups = ["fast", "slow", "not-created-yet"]
    stats = await run_cleanup(resources.engine, resources.redis, fast, groups=groups)

    assert stats.entries_trimmed == 0
    assert stats.streams_held_back == [0, 1]
    assert await stream.remaining() == stream.ids
    assert await resources.redis.xlen(ungrouped) == 1


class Context:
    """The part of the Lambda context a job reads: its time budget."""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


async def test_the_scheduled_job_reports_what_it_did(
    resources: Resources, fast: Settings, stream: Stream
) -> None:
    for group in ("fast", "slow"):
        await stream.ack(group, await stream.read(group, 10))
    await add_outbox_row(resources, 1, created=9, published=8)
    job_resources = Resources.from_settings(fast)
    try:
        summary = await cleanup_job(["fast", "slow"])(job_resources, Context())  # type: ignore[arg-type]
    finally:
        await job_resources.close()

    assert summary["entries_trimmed"] == 10
    assert summary["outbox_deleted"] == 1
    assert summary["dead_letters"] == 0

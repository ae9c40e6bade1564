"""How far behind the event pipeline is: outbox, consumer groups, dead letters.

One view for three readers: the workers' metrics, ``GET /admin/events`` and
the CLI. Per group and partition, from PostgreSQL (the truth): *settled*,
the group's position, *unsettled*, events published or waiting that it has
not settled, and the age of its oldest unsettled event; from Redis (the
transport): *lag*, entries not yet delivered to the group, and *pending*,
entries delivered but not acknowledged. Per partition: where the relay left
the stream and how often it was found to have lost entries and repaired.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.redis import RedisClient
from storefront.events.dead_letters import count_dead_letters
from storefront.events.outbox import outbox
from storefront.events.partitions import stream_key
from storefront.events.positions import consumer_positions, event_partitions
from storefront.settings import Settings

__all__ = [
    "EventStatus",
    "GroupStatus",
    "OutboxStatus",
    "PartitionStatus",
    "StreamStatus",
    "add_settlement",
    "event_status",
    "group_statuses",
    "outbox_status",
    "stream_statuses",
]

# Where Redis cannot say the lag (before 7.0, or after deletions inside the
# unread range), it is counted with XRANGE, up to this many entries.
LAG_COUNT_CAP = 10_000


class PartitionStatus(BaseModel):
    partition: int
    lag: int
    pending: int
    # False: the group does not exist on this stream yet (all of it is lag).
    exists: bool = True
    # The group's position in PostgreSQL: the last sequence it has settled.
    settled: int = 0


class GroupStatus(BaseModel):
    group: str
    lag: int
    pending: int
    partitions: list[PartitionStatus]
    # Events of its partitions (published or not) the group has not settled.
    unsettled: int = 0
    oldest_unsettled_age_seconds: float | None = None


class StreamStatus(BaseModel):
    partition: int
    # Where PostgreSQL says the partition's stream ends.
    last_sequence: int
    # Times the stream was found to have lost entries, and events republished.
    repairs: int
    events_republished: int
    last_repaired_at: datetime | None


class OutboxStatus(BaseModel):
    unpublished: int
    oldest_unpublished_age_seconds: float | None


class EventStatus(BaseModel):
    groups: list[GroupStatus]
    outbox: OutboxStatus
    streams: list[StreamStatus]
    dead_letters: int


async def event_status(
    engine: AsyncEngine,
    redis: RedisClient,
    settings: Settings,
    groups: Collection[str],
) -> EventStatus:
    statuses = await group_statuses(redis, settings, groups)
    outbox_now = await outbox_status(engine)
    await add_settlement(engine, settings, statuses, outbox_now)
    return EventStatus(
        groups=statuses,
        outbox=outbox_now,
        streams=await stream_statuses(engine, settings),
        dead_letters=await count_dead_letters(engine),
    )


async def stream_statuses(engine: AsyncEngine, settings: Settings) -> list[StreamStatus]:
    async with engine.connect() as connection:
        rows = {row.partition: row for row in await connection.execute(select(event_partitions))}
    return [
        StreamStatus(
            partition=partition,
            last_sequence=row.last_sequence if row else 0,
            repairs=row.repairs if row else 0,
            events_republished=row.events_republished if row else 0,
            last_repaired_at=row.last_repaired_at if row else None,
        )
        for partition in range(settings.event_partitions)
        for row in [rows.get(partition)]
    ]


# Per (group, partition): the creation time of the first event past the
# group's position, found through ix_outbox_partition_sequence (one row each).
_OLDEST_UNSETTLED = text(
    """
SELECT g.group_name, g.partition, first.created_at, now() AS now
FROM unnest(CAST(:groups AS text[]), CAST(:partitions AS smallint[]),
            CAST(:positions AS bigint[])) AS g(group_name, partition, sequence)
CROSS JOIN LATERAL (
    SELECT created_at FROM outbox
    WHERE outbox.partition = g.partition AND outbox.sequence > g.sequence
    ORDER BY outbox.sequence LIMIT 1
) AS first
"""
)


async def add_settlement(
    engine: AsyncEngine, settings: Settings, statuses: list[GroupStatus], waiting: OutboxStatus
) -> None:
    """Fill in each group's positions, unsettled count and oldest unsettled age."""
    names = [status.group for status in statuses]
    partitions = range(settings.event_partitions)
    async with engine.connect() as connection:
        found = await connection.execute(
            select(consumer_positions).where(consumer_positions.c.group_name.in_(names))
        )
        positions = {(row.group_name, row.partition): row.sequence for row in found}
        keys = [(group, partition) for group in names for partition in partitions]
        settled = [positions.get(key, 0) for key in keys]
        oldest = await connection.execute(
            _OLDEST_UNSETTLED,
            {
                "groups": [group for group, _ in keys],
                "partitions": [partition for _, partition in keys],
                "positions": settled,
            },
        )
        first_unsettled = [(row.group_name, row.created_at, row.now) for row in oldest]
        tails = await connection.execute(
            select(event_partitions.c.partition, event_partitions.c.last_sequence)
        )
        last = {row.partition: row.last_sequence for row in tails}
    for status in statuses:
        for partition in status.partitions:
            partition.settled = positions.get((status.group, partition.partition), 0)
        status.unsettled = waiting.unpublished + sum(
            max(0, last.get(p.partition, 0) - p.settled) for p in status.partitions
        )
        ages = [
            _seconds_between(created, now)
            for group, created, now in first_unsettled
            if group == status.group
        ]
        if waiting.oldest_unpublished_age_seconds is not None:
            ages.append(waiting.oldest_unpublished_age_seconds)
        status.oldest_unsettled_age_seconds = max((a for a in ages if a is not None), default=None)


async def outbox_status(engine: AsyncEngine) -> OutboxStatus:
    query = select(func.count(), func.min(outbox.c.created_at), func.now()).where(
        outbox.c.published_at.is_(None)
    )
    async with engine.connect() as connection:
        unpublished, oldest, now = (await connection.execute(query)).one()
    age = _seconds_between(oldest, now)
    return OutboxStatus(unpublished=unpublished, oldest_unpublished_age_seconds=age)


async def group_statuses(
    redis: RedisClient,
    settings: Settings,
    groups: Collection[str],
    *,
    discover: bool = True,
) -> list[GroupStatus]:
    """``groups``, and with ``discover`` every other group found on a stream, by name."""
    streams = [
        stream_key(settings.redis_key_prefix, partition)
        for partition in range(settings.event_partitions)
    ]
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xinfo_groups(stream)
            pipe.xlen(stream)
        replies = await pipe.execute(raise_on_error=False)
    found: list[dict[str, Mapping[str, Any]]] = []
    lengths: list[int] = []
    for infos, length in zip(replies[::2], replies[1::2], strict=True):
        # An error here is "no such key": a stream nothing was published to yet.
        infos = [] if isinstance(infos, Exception) else infos
        found.append({_text(info["name"]): info for info in infos})
        lengths.append(0 if isinstance(length, Exception) else int(length))
    names = sorted(set(groups).union(*found) if discover else set(groups))
    statuses = []
    for name in names:
        partitions = []
        for partition, stream in enumerate(streams):
            info = found[partition].get(name)
            if info is None:
                partitions.append(
                    PartitionStatus(
                        partition=partition, lag=lengths[partition], pending=0, exists=False
                    )
                )
                continue
            lag = await _lag(redis, stream, info)
            partitions.append(
                PartitionStatus(partition=partition, lag=lag, pending=int(info["pending"]))
            )
        statuses.append(
            GroupStatus(
                group=name,
                lag=sum(partition.lag for partition in partitions),
                pending=sum(partition.pending for partition in partitions),
                partitions=partitions,
            )
        )
    return statuses


async def _lag(redis: RedisClient, stream: str, info: Mapping[str, Any]) -> int:
    lag = info.get("lag")
    if lag is not None:
        return int(lag)
    last = _text(info["last-delivered-id"])
    undelivered = await redis.xrange(stream, min=f"({last}", count=LAG_COUNT_CAP)
    return len(undelivered or [])


def _seconds_between(start: datetime | None, end: datetime) -> float | None:
    return None if start is None else max(0.0, (end - start).total_seconds())


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

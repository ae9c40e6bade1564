"""How far behind the event pipeline is: outbox, consumer groups, dead letters.

One view for three readers: the workers' metrics, ``GET /admin/events`` and
the CLI. Per group and partition: *lag*, entries not yet delivered to the
group, and *pending*, entries delivered but not acknowledged (being handled,
failing, or left by a dead reader).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.redis import RedisClient
from storefront.events.dead_letters import count_dead_letters
from storefront.events.groups import CONSUMER_GROUPS
from storefront.events.outbox import outbox
from storefront.events.partitions import stream_key
from storefront.settings import Settings

__all__ = [
    "EventStatus",
    "GroupStatus",
    "OutboxStatus",
    "PartitionStatus",
    "event_status",
    "group_statuses",
    "outbox_status",
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


class GroupStatus(BaseModel):
    group: str
    lag: int
    pending: int
    partitions: list[PartitionStatus]


class OutboxStatus(BaseModel):
    unpublished: int
    oldest_unpublished_age_seconds: float | None


class EventStatus(BaseModel):
    groups: list[GroupStatus]
    outbox: OutboxStatus
    dead_letters: int


async def event_status(
    engine: AsyncEngine,
    redis: RedisClient,
    settings: Settings,
    groups: Collection[str] = CONSUMER_GROUPS,
) -> EventStatus:
    return EventStatus(
        groups=await group_statuses(redis, settings, groups),
        outbox=await outbox_status(engine),
        dead_letters=await count_dead_letters(redis, settings),
    )


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
    groups: Collection[str] = CONSUMER_GROUPS,
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

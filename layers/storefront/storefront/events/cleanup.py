"""Retention: old outbox and inbox rows, and stream entries every group is done with.

* Published outbox rows older than ``outbox_retention_days`` and inbox rows
  older than ``inbox_retention_days`` are deleted in batches, each batch its
  own short transaction, so cleanup never holds long locks. An inbox row is
  what makes a redelivery a no-op: redeliveries come within minutes, but a
  dead letter replayed after the inbox retention is handled again.
* Idempotency keys past their 24 h expiry are deleted the same way.
* Each partition stream is trimmed with ``XTRIM MINID`` strictly below what
  EVERY group has consumed: for each group, the lower of the id after its
  last-delivered id and its oldest pending id. An entry that some group has
  not been delivered, or has not acknowledged, is never trimmed. A stream is
  left alone when it has no group, or when an expected group (one of
  :data:`.groups.CONSUMER_GROUPS`) does not exist on it yet: that group will
  start at id 0 and must find everything. Never ``MAXLEN``, which trims by
  count, consumed or not.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from redis.exceptions import ResponseError
from sqlalchemy import ColumnElement, Delete, Interval, cast, delete, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.database import UnitOfWork
from storefront.adapters.redis import RedisClient
from storefront.events.dead_letters import count_dead_letters
from storefront.events.groups import CONSUMER_GROUPS
from storefront.events.outbox import inbox, outbox
from storefront.events.partitions import stream_key
from storefront.idempotency import idempotency_keys
from storefront.observability import metrics
from storefront.resources import Resources
from storefront.scheduled_handler import ScheduledJob
from storefront.settings import Settings

__all__ = ["CleanupStats", "cleanup_job", "run_cleanup", "safe_trim_id", "trim_streams"]

DELETE_BATCH_SIZE = 1_000
_MAX_SEQUENCE = 2**64 - 1

StreamId = tuple[int, int]


@dataclass
class CleanupStats:
    outbox_deleted: int = 0
    inbox_deleted: int = 0
    idempotency_keys_deleted: int = 0
    entries_trimmed: int = 0
    # Partitions not trimmed: no group, or an expected group missing.
    streams_held_back: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "outbox_deleted": self.outbox_deleted,
            "inbox_deleted": self.inbox_deleted,
            "idempotency_keys_deleted": self.idempotency_keys_deleted,
            "entries_trimmed": self.entries_trimmed,
            "streams_held_back": self.streams_held_back,
        }


async def run_cleanup(
    engine: AsyncEngine,
    redis: RedisClient,
    settings: Settings,
    groups: Collection[str] = CONSUMER_GROUPS,
    remaining_ms: Callable[[], int] | None = None,
) -> CleanupStats:
    """One cleanup pass; with ``remaining_ms`` the deletes stop at the margin."""

    def in_budget() -> bool:
        return remaining_ms is None or remaining_ms() > settings.time_budget_margin_ms

    stats = CleanupStats()
    stats.entries_trimmed, stats.streams_held_back = await trim_streams(redis, settings, groups)
    outbox_age = _days(settings.outbox_retention_days)
    old_outbox = select(outbox.c.id).where(outbox.c.published_at < func.now() - outbox_age)
    stats.outbox_deleted = await _delete_in_batches(
        engine,
        lambda: delete(outbox).where(outbox.c.id.in_(old_outbox.limit(DELETE_BATCH_SIZE))),
        in_budget,
    )
    inbox_age = _days(settings.inbox_retention_days)
    old_inbox = select(inbox.c.consumer, inbox.c.event_id).where(
        inbox.c.processed_at < func.now() - inbox_age
    )
    stats.inbox_deleted = await _delete_in_batches(
        engine,
        lambda: delete(inbox).where(
            tuple_(inbox.c.consumer, inbox.c.event_id).in_(old_inbox.limit(DELETE_BATCH_SIZE))
        ),
        in_budget,
    )
    expired = select(idempotency_keys.c.scope, idempotency_keys.c.key).where(
        idempotency_keys.c.expires_at < func.now()
    )
    stats.idempotency_keys_deleted = await _delete_in_batches(
        engine,
        lambda: delete(idempotency_keys).where(
            tuple_(idempotency_keys.c.scope, idempotency_keys.c.key).in_(
                expired.limit(DELETE_BATCH_SIZE)
            )
        ),
        in_budget,
    )
    return stats


def cleanup_job(groups: Collection[str] = CONSUMER_GROUPS) -> ScheduledJob:
    """The scheduled job for ``functions/outbox_cleanup`` (see scheduled_handler)."""

    async def cleanup(resources: Resources, context: LambdaContext) -> dict[str, Any]:
        stats = await run_cleanup(
            resources.engine,
            resources.redis,
            resources.settings,
            groups,
            remaining_ms=context.get_remaining_time_in_millis,
        )
        dead_letters = await count_dead_letters(resources.redis, resources.settings)
        for name, value in (
            ("OutboxRowsDeleted", stats.outbox_deleted),
            ("InboxRowsDeleted", stats.inbox_deleted),
            ("IdempotencyKeysDeleted", stats.idempotency_keys_deleted),
            ("StreamEntriesTrimmed", stats.entries_trimmed),
            ("DeadLetterCount", dead_letters),
        ):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return stats.summary() | {"dead_letters": dead_letters}

    return cleanup


async def trim_streams(
    redis: RedisClient, settings: Settings, groups: Collection[str]
) -> tuple[int, list[int]]:
    """Trim every partition stream; returns (entries trimmed, partitions held back)."""
    trimmed, held_back = 0, []
    for partition in range(settings.event_partitions):
        stream = stream_key(settings.redis_key_prefix, partition)
        min_id = await safe_trim_id(redis, stream, groups)
        if min_id is None:
            held_back.append(partition)
            continue
        trimmed += int(await redis.xtrim(stream, minid=min_id, approximate=False))
    return trimmed, held_back


async def safe_trim_id(redis: RedisClient, stream: str, expected: Collection[str]) -> str | None:
    """The lowest id some group still needs, or None when nothing may be trimmed.

    Computed from values that only move forward while we read them, so a
    group advancing meanwhile only makes the answer more cautious.
    """
    try:
        infos = await redis.xinfo_groups(stream)
    except ResponseError:
        return None  # no such stream
    names = {_text(info["name"]) for info in infos}
    if not infos or not set(expected) <= names:
        return None
    needed: list[StreamId] = []
    for info in infos:
        # Everything up to last-delivered-id has been delivered to the group...
        bound = _after(_parse(_text(info["last-delivered-id"])))
        if int(info["pending"]):
            # ...and everything from its oldest pending entry on is not acked.
            summary = await redis.xpending(stream, _text(info["name"]))
            if summary["min"] is not None:
                bound = min(bound, _parse(_text(summary["min"])))
        needed.append(bound)
    ms, sequence = min(needed)
    return f"{ms}-{sequence}"


async def _delete_in_batches(
    engine: AsyncEngine, statement: Callable[[], Delete], in_budget: Callable[[], bool]
) -> int:
    deleted = 0
    while in_budget():
        async with UnitOfWork(engine) as uow:
            result = await uow.connection.execute(statement())
            await uow.commit()
        deleted += result.rowcount
        if result.rowcount < DELETE_BATCH_SIZE:
            break
    return deleted


def _days(days: int) -> ColumnElement[timedelta]:
    # An explicit interval: "now() - $1" alone would make PostgreSQL guess a timestamp.
    return cast(literal(timedelta(days=days)), Interval)


def _parse(stream_id: str) -> StreamId:
    ms, _, sequence = stream_id.partition("-")
    return int(ms), int(sequence or 0)


def _after(stream_id: StreamId) -> StreamId:
    ms, sequence = stream_id
    return (ms + 1, 0) if sequence == _MAX_SEQUENCE else (ms, sequence + 1)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

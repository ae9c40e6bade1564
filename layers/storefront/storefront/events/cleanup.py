"""Retention: outbox rows and stream entries every group has settled.

* An outbox row is deleted once EVERY consumer group has settled it (its
  position on the row's partition is at or past the row's sequence,
  :mod:`.positions`) and it was published ``outbox_retention_days`` ago.
  Age alone never deletes a row some group still needs: it is what the relay
  republishes from when Redis loses a stream. Deleted in batches, each batch
  its own short transaction, so cleanup never holds long locks.
* Idempotency keys past their 24 h expiry are deleted the same way.
* Each partition stream is trimmed with ``XTRIM MINID`` strictly above what
  every group has settled in PostgreSQL: what is trimmed no group needs,
  whatever Redis remembers of its groups. A group without a position on a
  partition (a worker that has never run) holds the whole stream back. Never
  ``MAXLEN``, which trims by count, settled or not.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from sqlalchemy import ColumnElement, Delete, Interval, cast, delete, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.database import UnitOfWork
from storefront.adapters.redis import RedisClient
from storefront.events.dead_letters import count_dead_letters
from storefront.events.outbox import outbox
from storefront.events.partitions import stream_key
from storefront.events.positions import entry_id, settled_sequences
from storefront.idempotency import idempotency_keys
from storefront.observability import metrics
from storefront.resources import Resources
from storefront.scheduled_handler import ScheduledJob
from storefront.settings import Settings

__all__ = ["CleanupStats", "cleanup_job", "run_cleanup", "trim_streams"]

DELETE_BATCH_SIZE = 1_000


@dataclass
class CleanupStats:
    outbox_deleted: int = 0
    idempotency_keys_deleted: int = 0
    entries_trimmed: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "outbox_deleted": self.outbox_deleted,
            "idempotency_keys_deleted": self.idempotency_keys_deleted,
            "entries_trimmed": self.entries_trimmed,
        }


async def run_cleanup(
    engine: AsyncEngine,
    redis: RedisClient,
    settings: Settings,
    groups: Collection[str],
    remaining_ms: Callable[[], int] | None = None,
) -> CleanupStats:
    """One cleanup pass; with ``remaining_ms`` the deletes stop at the margin."""

    def in_budget() -> bool:
        return remaining_ms is None or remaining_ms() > settings.time_budget_margin_ms

    stats = CleanupStats()
    async with engine.connect() as connection:
        settled = await settled_sequences(connection, groups, settings.event_partitions)
        await connection.rollback()
    stats.entries_trimmed = await trim_streams(redis, settings, settled)
    outbox_age = _days(settings.outbox_retention_days)
    for partition, sequence in settled.items():
        done = select(outbox.c.id).where(
            outbox.c.partition == partition,
            outbox.c.sequence <= sequence,
            outbox.c.published_at < func.now() - outbox_age,
        )
        stats.outbox_deleted += await _delete_in_batches(
            engine,
            delete(outbox).where(outbox.c.id.in_(done.limit(DELETE_BATCH_SIZE))),
            in_budget,
        )
    expired = select(idempotency_keys.c.scope, idempotency_keys.c.key).where(
        idempotency_keys.c.expires_at < func.now()
    )
    stats.idempotency_keys_deleted = await _delete_in_batches(
        engine,
        delete(idempotency_keys).where(
            tuple_(idempotency_keys.c.scope, idempotency_keys.c.key).in_(
                expired.limit(DELETE_BATCH_SIZE)
            )
        ),
        in_budget,
    )
    return stats


def cleanup_job(groups: Collection[str]) -> ScheduledJob:
    """The scheduled job for ``functions/outbox_cleanup`` (see scheduled_handler)."""

    async def cleanup(resources: Resources, context: LambdaContext) -> dict[str, Any]:
        stats = await run_cleanup(
            resources.engine,
            resources.redis,
            resources.settings,
            groups,
            remaining_ms=context.get_remaining_time_in_millis,
        )
        dead_letters = await count_dead_letters(resources.engine)
        for name, value in (
            ("OutboxRowsDeleted", stats.outbox_deleted),
            ("IdempotencyKeysDeleted", stats.idempotency_keys_deleted),
            ("StreamEntriesTrimmed", stats.entries_trimmed),
            ("DeadLetterCount", dead_letters),
        ):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return stats.summary() | {"dead_letters": dead_letters}

    return cleanup


async def trim_streams(redis: RedisClient, settings: Settings, settled: dict[int, int]) -> int:
    """Trim every partition stream to what some group has not settled; returns
    how many entries went."""
    async with redis.pipeline(transaction=False) as pipe:
        for partition, sequence in settled.items():
            stream = stream_key(settings.redis_key_prefix, partition)
            pipe.xtrim(stream, minid=entry_id(sequence + 1), approximate=False)
        trimmed = await pipe.execute()
    return sum(int(count) for count in trimmed)


async def _delete_in_batches(
    engine: AsyncEngine, statement: Delete, in_budget: Callable[[], bool]
) -> int:
    deleted = 0
    while in_budget():
        async with UnitOfWork(engine) as uow:
            result = await uow.connection.execute(statement)
            await uow.commit()
        deleted += result.rowcount
        if result.rowcount < DELETE_BATCH_SIZE:
            break
    return deleted


def _days(days: int) -> ColumnElement[timedelta]:
    # An explicit interval: "now() - $1" alone would make PostgreSQL guess a timestamp.
    return cast(literal(timedelta(days=days)), Interval)

"""The scheduled flush: view counts from Redis into ``product_views_daily``.

No view is lost or counted twice, whenever a flush dies and however flushes
overlap:

1. The pending hash is renamed to a new batch key, and the batch id added to
   the batch set, in one script: views counted from then on start a new
   pending hash, and the batch can no longer change.
2. Every batch in the set -- this one, and any that a dead flush left -- is
   applied in ONE PostgreSQL transaction that also inserts its batch id
   (:func:`.repository.apply_batch`). A batch applied before is found by its id
   and adds nothing; two flushes applying one batch at once serialise on the
   id's unique index.
3. Only after that commit is the batch deleted from Redis.

Dying after 1 leaves a batch the next flush applies; dying between 2 and 3
leaves one whose id is already recorded, which the next flush only deletes.
Batch ids are kept ``views_batch_retention_days``, far longer than a batch
waits in Redis while flushes run every minute.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.database import UnitOfWork
from storefront.adapters.redis import RedisClient
from storefront.analytics import counters, repository
from storefront.analytics.counters import ViewKeys
from storefront.ids import new_id
from storefront.observability import metrics
from storefront.resources import Resources
from storefront.scheduled_handler import ScheduledJob
from storefront.settings import Settings

__all__ = ["FlushStats", "flush_views", "views_flush_job"]


@dataclass
class FlushStats:
    batches_applied: int = 0
    # Found already applied: a flush died before deleting it, or another
    # flush applied it first.
    batches_already_applied: int = 0
    views_flushed: int = 0
    batch_ids_forgotten: int = 0

    def summary(self) -> dict[str, Any]:
        return asdict(self)


async def flush_views(engine: AsyncEngine, redis: RedisClient, settings: Settings) -> FlushStats:
    keys = ViewKeys(settings.redis_key_prefix)
    stats = FlushStats()
    await counters.move_pending(redis, keys, new_id())
    for batch_id in await counters.batch_ids(redis, keys):
        counts = await counters.read_batch(redis, keys, batch_id)
        # Empty: another flush applied and deleted it since the set was read.
        if counts:
            async with UnitOfWork(engine) as uow:
                applied = await repository.apply_batch(uow.connection, batch_id, counts)
                await uow.commit()
            if applied:
                stats.batches_applied += 1
                stats.views_flushed += sum(counts.values())
            else:
                stats.batches_already_applied += 1
        await counters.forget_batch(redis, keys, batch_id)
    async with UnitOfWork(engine) as uow:
        days = settings.views_batch_retention_days
        stats.batch_ids_forgotten = await repository.forget_old_batches(uow.connection, days)
        await uow.commit()
    return stats


def views_flush_job() -> ScheduledJob:
    """The scheduled job of ``functions/views_flush`` (see scheduled_handler)."""

    async def flush(resources: Resources, context: LambdaContext) -> dict[str, Any]:
        stats = await flush_views(resources.engine, resources.redis, resources.settings)
        metrics.add_metric(name="ViewsFlushed", unit=MetricUnit.Count, value=stats.views_flushed)
        return stats.summary()

    return flush

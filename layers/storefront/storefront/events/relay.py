"""The outbox relay: committed outbox rows -> their partition's Redis Stream.

One batch is one PostgreSQL transaction: take the partition's advisory lock,
claim its oldest unpublished rows, ``XADD`` them in one pipelined round trip,
mark them published, commit.

Why an aggregate's events reach its stream in commit order:

* A writer locks the aggregate's row before it inserts the outbox row, so a
  later event of the same aggregate cannot even get its outbox id until the
  earlier one has committed: per aggregate, outbox id order is commit order.
* All of an aggregate's events share one partition (:mod:`.partitions`), and
  ``pg_try_advisory_xact_lock`` lets only one relay at a time publish a
  partition; a relay that finds the lock taken skips the partition.
* Within a partition, rows are claimed and ``XADD``-ed in id order, and the
  next batch is claimed only after the previous one has committed.

Why nothing is lost (no gaps): rows are selected by ``published_at IS NULL``,
not above a high-water mark. A row whose transaction commits after a higher
id's was invisible to the pass that published the higher id, and is simply
claimed by the next pass. (That can only happen across aggregates, whose
relative order does not matter.)

Why a crash only duplicates: the rows are marked published in the same
transaction that claimed them, after the ``XADD``. If the process dies
between the two, the transaction rolls back, the rows stay unpublished and
the next pass publishes them again. Delivery is at-least-once; consumers
record each ``event_id`` in their inbox and skip one they have processed.

Streams are never trimmed here (no ``MAXLEN``): only cleanup trims, and only
below what every consumer group has acknowledged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import BigInteger, Integer, any_, func, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storefront.events.outbox import outbox
from storefront.events.partitions import stream_key
from storefront.observability import logger
from storefront.settings import Settings

__all__ = [
    "RELAY_LOCK_CLASS",
    "AfterXadd",
    "RelayStats",
    "oldest_unpublished_age_seconds",
    "relay_once",
    "relay_partition",
]

# The first key of the relay's two-key advisory locks (the second is the
# partition). An arbitrary constant: any other job taking advisory locks must
# use a different one, or it would block the relay's partitions.
RELAY_LOCK_CLASS = 0x5F0B_0001

# A test seam: called after the XADDs, before the rows are marked published.
# Raising in it is the process dying between XADD and commit.
AfterXadd = Callable[[], Awaitable[None]]


def _always() -> bool:
    return True


@dataclass
class RelayStats:
    relayed: int = 0
    batches: int = 0
    largest_batch: int = 0
    passes: int = 0
    # Partitions found locked by another relay (each time it happened).
    skipped_partitions: list[int] = field(default_factory=list)

    def add_batch(self, size: int) -> None:
        self.relayed += size
        self.batches += 1
        self.largest_batch = max(self.largest_batch, size)

    def merge(self, other: RelayStats) -> None:
        self.relayed += other.relayed
        self.batches += other.batches
        self.largest_batch = max(self.largest_batch, other.largest_batch)
        self.passes += other.passes
        self.skipped_partitions.extend(other.skipped_partitions)

    def summary(self) -> dict[str, int]:
        return {
            "relayed": self.relayed,
            "batches": self.batches,
            "largest_batch": self.largest_batch,
            "passes": self.passes,
            "skipped_partitions": len(self.skipped_partitions),
        }


async def relay_partition(
    engine: AsyncEngine,
    redis: Redis,
    settings: Settings,
    partition: int,
    *,
    after_xadd: AfterXadd | None = None,
) -> int | None:
    """Relay one batch of one partition in one transaction.

    Returns how many rows were published, or None when another relay holds
    the partition.
    """
    async with engine.begin() as connection:
        if not await _try_lock(connection, partition):
            return None
        claimed = (
            await connection.execute(
                # Served by ix_outbox_unpublished (partition, id) WHERE published_at IS NULL.
                select(outbox.c.id, outbox.c.envelope)
                .where(outbox.c.partition == partition, outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(settings.relay_batch_size)
                .with_for_update()
            )
        ).all()
        if not claimed:
            return 0
        await _xadd(redis, stream_key(settings.redis_key_prefix, partition), claimed)
        if after_xadd is not None:
            await after_xadd()
        ids = [row.id for row in claimed]
        await connection.execute(
            update(outbox)
            .where(outbox.c.id == any_(literal(ids, ARRAY(BigInteger))))
            .values(published_at=func.now())
        )
    return len(claimed)


async def relay_once(
    engine: AsyncEngine,
    redis: Redis,
    settings: Settings,
    *,
    has_time: Callable[[], bool] = _always,
    after_xadd: AfterXadd | None = None,
) -> RelayStats:
    """One pass: publish every partition's unpublished rows, batch by batch.

    Partitions take turns, one batch each, so a backlog in one does not
    starve the others; a partition comes back for another turn while its
    batches are full. ``has_time`` is checked before every batch, so a pass
    stops within one batch of the caller's deadline.
    """
    stats = RelayStats(passes=1)
    due = await _partitions_with_unpublished_rows(engine)
    while due and has_time():
        full: list[int] = []
        for partition in due:
            if not has_time():
                break
            size = await relay_partition(engine, redis, settings, partition, after_xadd=after_xadd)
            if size is None:
                logger.debug("partition held by another relay", extra={"partition": partition})
                stats.skipped_partitions.append(partition)
            elif size:
                stats.add_batch(size)
                if size >= settings.relay_batch_size:
                    full.append(partition)
        due = full
    return stats


async def oldest_unpublished_age_seconds(engine: AsyncEngine) -> float:
    """How long the oldest unpublished row has waited; 0 when none waits."""
    async with engine.connect() as connection:
        age = await connection.scalar(
            select(func.extract("epoch", func.now() - func.min(outbox.c.created_at))).where(
                outbox.c.published_at.is_(None)
            )
        )
    return max(0.0, float(age)) if age is not None else 0.0


async def _try_lock(connection: AsyncConnection, partition: int) -> bool:
    # Transaction-scoped: released by the commit or rollback, so a relay that
    # dies (connection closed) can never leave a partition locked.
    locked = await connection.scalar(
        select(
            func.pg_try_advisory_xact_lock(
                literal(RELAY_LOCK_CLASS, Integer), literal(partition, Integer)
            )
        )
    )
    return bool(locked)


async def _partitions_with_unpublished_rows(engine: AsyncEngine) -> list[int]:
    # One cheap query on the partial index instead of a transaction per
    # partition: an idle pass costs one round trip.
    async with engine.connect() as connection:
        rows = await connection.scalars(
            select(outbox.c.partition)
            .where(outbox.c.published_at.is_(None))
            .distinct()
            .order_by(outbox.c.partition)
        )
        return list(rows)


async def _xadd(redis: Redis, stream: str, rows: Sequence[Any]) -> None:
    # One round trip per batch; no MULTI: the outbox transaction is what
    # makes the batch atomic (a partial XADD is republished, never lost).
    async with redis.pipeline(transaction=False) as pipe:
        for row in rows:
            pipe.xadd(
                stream,
                {
                    "envelope": json.dumps(row.envelope, separators=(",", ":")),
                    "outbox_id": str(row.id),
                },
            )
        await pipe.execute()

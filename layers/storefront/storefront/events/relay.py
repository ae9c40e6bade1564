"""The outbox relay: committed outbox rows -> their partition's Redis Stream.

One batch is one PostgreSQL transaction: take the partition's advisory lock,
claim its oldest unpublished rows, ``XADD`` them in one round trip (one
script call), mark them published, commit.

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

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    Text,
    any_,
    cast,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storefront.adapters.redis import RedisClient
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

# Appends a batch to one stream with one command and one reply. A pipeline of
# one XADD per row spends most of the relay's time building a command and
# parsing a reply per row in the client (measured for ``make bench``: about
# 24k rows/s pipelined, 100k scripted). One key per call, so it also runs on
# Redis Cluster; and a batch lands whole or not at all.
_XADD_BATCH = """
for i = 1, #ARGV, 2 do
  redis.call('XADD', KEYS[1], '*', 'envelope', ARGV[i], 'outbox_id', ARGV[i + 1])
end
return #ARGV / 2
"""

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
    database: AsyncEngine | AsyncConnection,
    redis: RedisClient,
    settings: Settings,
    partition: int,
    *,
    after_xadd: AfterXadd | None = None,
) -> int | None:
    """Relay one batch of one partition in one transaction.

    Returns how many rows were published, or None when another relay holds
    the partition. Given a connection (not in a transaction), the batch's
    transaction runs on it.
    """
    if isinstance(database, AsyncEngine):
        async with database.connect() as connection:
            return await relay_partition(
                connection, redis, settings, partition, after_xadd=after_xadd
            )
    async with database.begin():
        connection = database
        if not await _try_lock(connection, partition):
            return None
        claimed = (await connection.execute(_claim(partition, settings.relay_batch_size))).all()
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


def _claim(partition: int, limit: int) -> Select[tuple[int, str]]:
    """The partition's oldest unpublished rows, locked, in id order.

    Written so that only ix_outbox_unpublished (partition, id) WHERE
    published_at IS NULL can deliver the order without a sort: a range on
    ``partition`` keeps it in the ORDER BY (an equality would drop it), which
    the primary key cannot serve. With ``partition = :p ORDER BY id``,
    PostgreSQL picks the primary key whenever its statistics say most rows are
    unpublished (a backlog, the very moment throughput matters) and then
    filters its way past every row already published: each batch got slower
    than the last (``make bench``: 22 ms against 2 ms per batch, 5,000 rows
    into a 100k backlog).
    """
    return (
        # As text: the envelope goes to the stream as PostgreSQL returns it,
        # never decoded into Python objects and encoded again.
        select(outbox.c.id, cast(outbox.c.envelope, Text).label("envelope"))
        .where(outbox.c.partition.between(partition, partition), outbox.c.published_at.is_(None))
        .order_by(outbox.c.partition, outbox.c.id)
        .limit(limit)
        .with_for_update()
    )


async def relay_once(
    engine: AsyncEngine,
    redis: RedisClient,
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
    # One connection for the whole pass, each batch a transaction on it: a
    # checkout pings the server first, a round trip per batch saved, and the
    # pass is on the latency path of every event (``make bench``).
    async with engine.connect() as connection:
        due = await _partitions_with_unpublished_rows(connection)
        while due and has_time():
            full: list[int] = []
            for partition in due:
                if not has_time():
                    break
                size = await relay_partition(
                    connection, redis, settings, partition, after_xadd=after_xadd
                )
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


async def _partitions_with_unpublished_rows(connection: AsyncConnection) -> list[int]:
    # One cheap query on the partial index instead of a transaction per
    # partition: an idle pass costs one round trip.
    async with connection.begin():
        rows = await connection.scalars(
            select(outbox.c.partition)
            .where(outbox.c.published_at.is_(None))
            .distinct()
            .order_by(outbox.c.partition)
        )
        return list(rows)


async def _xadd(redis: RedisClient, stream: str, rows: Sequence[Any]) -> None:
    # No MULTI needed for safety: the outbox transaction is what makes the
    # batch durable (a batch whose commit fails is republished, never lost).
    fields: list[str] = []
    for row in rows:
        fields += (row.envelope, str(row.id))
    await redis.register_script(_XADD_BATCH)(keys=[stream], args=fields)

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

Why losing Redis data loses no event: each row gets its partition's next
sequence number as it is appended, the stream entry's id is
``<sequence>-0``, and ``event_partitions.last_sequence`` records where the
relay left the stream, in the transaction that marks the rows published. The
append script compares the stream's last id with that record, atomically
with the ``XADD``; every pass also compares every partition's stream (idle
ones too) in one round trip. A stream that ends *before* the record lost
entries (a flush, a restart without persistence, a failover to a lagging
replica): :func:`repair` republishes, from the outbox, every event of the
partition some group has not settled (:mod:`.positions`), with its original
id, before anything newer. A stream that ends *after* it holds the append of
a relay that died before its commit: those entries are adopted (their rows
marked published with their sequence), never appended twice.

Streams are never trimmed here (no ``MAXLEN``): only cleanup trims, and only
below what every consumer group has settled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

from sqlalchemy import (
    Integer,
    Select,
    Text,
    cast,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storefront.adapters.redis import RedisClient
from storefront.events.outbox import outbox
from storefront.events.partitions import stream_key
from storefront.events.positions import event_partitions
from storefront.events.repair import Repairs, repair
from storefront.events.streams import StreamEntry, append, ends_at, stream_tails
from storefront.observability import logger
from storefront.settings import Settings

__all__ = [
    "RELAY_LOCK_CLASS",
    "AfterXadd",
    "RelayStats",
    "StreamMoved",
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

# Marks a batch published with its sequence numbers and moves the partition's
# recorded tail, in one statement.
_MARK_PUBLISHED = text(
    """
WITH marked AS (
    UPDATE outbox SET published_at = now(), sequence = batch.sequence
    FROM unnest(CAST(:ids AS bigint[]), CAST(:sequences AS bigint[])) AS batch(id, sequence)
    WHERE outbox.id = batch.id
)
INSERT INTO event_partitions (partition, last_sequence) VALUES (:partition, :last_sequence)
ON CONFLICT (partition) DO UPDATE SET last_sequence = excluded.last_sequence
"""
)


class StreamMoved(RuntimeError):
    """A stream changed again right after its repair, under the partition's lock:
    another writer appends to it. The batch rolls back and the next pass retries."""


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
    repairs: Repairs = field(default_factory=Repairs)

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
        self.repairs.merge(other.repairs)

    def summary(self) -> dict[str, int]:
        return {
            "relayed": self.relayed,
            "batches": self.batches,
            "largest_batch": self.largest_batch,
            "passes": self.passes,
            "skipped_partitions": len(self.skipped_partitions),
        } | self.repairs.summary()


async def relay_partition(
    database: AsyncEngine | AsyncConnection,
    redis: RedisClient,
    settings: Settings,
    partition: int,
    *,
    after_xadd: AfterXadd | None = None,
    repairs: Repairs | None = None,
    tail: str | None = None,
    groups: Collection[str] = (),
) -> int | None:
    """Relay one batch of one partition in one transaction.

    Returns how many rows were published, or None when another relay holds
    the partition. Given a connection (not in a transaction), the batch's
    transaction runs on it. ``tail``: the stream's last id as the pass saw
    it, when that was not where PostgreSQL says; the stream is checked again
    and repaired first, even if there is nothing new to publish. ``groups``:
    the consumer groups a repair republishes for (:func:`.repair.repair`).
    """
    if isinstance(database, AsyncEngine):
        async with database.connect() as connection:
            return await relay_partition(
                connection,
                redis,
                settings,
                partition,
                after_xadd=after_xadd,
                tail=tail,
                groups=groups,
            )
    repairs = repairs if repairs is not None else Repairs()
    stream = stream_key(settings.redis_key_prefix, partition)
    async with database.begin():
        connection = database
        if not await _try_lock(connection, partition):
            return None
        last_sequence = await _last_sequence(connection, partition)
        # The pass saw this stream diverge: look again under the lock (an
        # empty append only compares), and repair it before anything newer.
        if tail is not None and (found := await append(redis, stream, last_sequence, [])):
            last_sequence = await repair(
                connection, redis, settings, partition, last_sequence, found, repairs, groups
            )
        for _ in range(2):
            claimed = (await connection.execute(_claim(partition, settings.relay_batch_size))).all()
            if not claimed:
                return 0
            entries = [
                StreamEntry(last_sequence + n, row.id, row.envelope, row.only_group)
                for n, row in enumerate(claimed, start=1)
            ]
            found = await append(redis, stream, last_sequence, entries)
            if found is None:
                break
            # The stream is not where PostgreSQL says: repair it, and claim
            # again (an adopted append may have published some of these rows).
            last_sequence = await repair(
                connection, redis, settings, partition, last_sequence, found, repairs, groups
            )
        else:
            raise StreamMoved(f"stream {stream} moved during its repair")
        if after_xadd is not None:
            await after_xadd()
        await connection.execute(
            _MARK_PUBLISHED,
            {
                "ids": [entry.outbox_id for entry in entries],
                "sequences": [entry.sequence for entry in entries],
                "partition": partition,
                "last_sequence": entries[-1].sequence,
            },
        )
    return len(entries)


def _claim(partition: int, limit: int) -> Select[tuple[int, str, str | None]]:
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
        select(outbox.c.id, cast(outbox.c.envelope, Text).label("envelope"), outbox.c.only_group)
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
    groups: Collection[str] = (),
) -> RelayStats:
    """One pass: check every stream's tail, then publish every partition's
    unpublished rows, batch by batch.

    The check is one Redis round trip and one query for all partitions, so a
    stream that lost entries is repaired within a pass even when its
    partition gets no new events. Partitions take turns, one batch each, so a
    backlog in one does not starve the others; a partition comes back for
    another turn while its batches are full. ``has_time`` is checked before
    every batch, so a pass stops within one batch of the caller's deadline.
    """
    stats = RelayStats(passes=1)
    # One connection for the whole pass, each batch a transaction on it: a
    # checkout pings the server first, a round trip per batch saved, and the
    # pass is on the latency path of every event (``make bench``).
    async with engine.connect() as connection:
        due, recorded = await _partitions_to_visit(connection)
        tails = await stream_tails(redis, settings)
        diverged = {
            partition: tail
            for partition, tail in enumerate(tails)
            if not ends_at(tail, recorded.get(partition, 0))
        }
        due = sorted(set(due) | set(diverged))
        while due and has_time():
            full: list[int] = []
            for partition in due:
                if not has_time():
                    break
                size = await relay_partition(
                    connection,
                    redis,
                    settings,
                    partition,
                    after_xadd=after_xadd,
                    repairs=stats.repairs,
                    tail=diverged.pop(partition, None),
                    groups=groups,
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


async def _last_sequence(connection: AsyncConnection, partition: int) -> int:
    # Read under the partition's lock: no other relay moves it meanwhile.
    found = await connection.scalar(
        select(event_partitions.c.last_sequence).where(event_partitions.c.partition == partition)
    )
    return int(found or 0)


async def _partitions_to_visit(connection: AsyncConnection) -> tuple[list[int], dict[int, int]]:
    """Partitions with unpublished rows, and where each stream should end.

    Two cheap queries in one transaction instead of a transaction per
    partition: an idle pass costs two round trips and one to Redis.
    """
    async with connection.begin():
        due = await connection.scalars(
            select(outbox.c.partition)
            .where(outbox.c.published_at.is_(None))
            .distinct()
            .order_by(outbox.c.partition)
        )
        recorded = await connection.execute(
            select(event_partitions.c.partition, event_partitions.c.last_sequence)
        )
        return list(due), {row.partition: row.last_sequence for row in recorded}

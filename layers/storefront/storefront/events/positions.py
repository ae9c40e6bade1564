"""Where each partition's stream should end, and how far each group has settled it.

PostgreSQL keeps both, because Redis may lose any suffix of a stream (or all
of it) at any moment:

* ``event_partitions.last_sequence``: the sequence number of the last event
  the relay appended to the partition's stream. Sequence numbers are given
  under the partition's relay lock, one after the other, and a stream entry's
  id is ``<sequence>-0``, so "the stream ends where PostgreSQL says" is one
  comparison of two ids (:mod:`.relay`).
* ``consumer_positions.sequence``: the last event of the partition a group
  has *settled* (handled, skipped or dead-lettered), written in the same
  transaction as the effects. It de-duplicates redeliveries, fences a reader
  whose lease was lost, and tells cleanup which outbox rows no group needs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    SmallInteger,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.adapters.database import metadata

__all__ = [
    "consumer_positions",
    "entry_id",
    "event_partitions",
    "group_positions",
    "sequence_of",
    "settled_sequences",
]

event_partitions = Table(
    "event_partitions",
    metadata,
    Column("partition", SmallInteger, primary_key=True, autoincrement=False),
    Column("last_sequence", BigInteger, nullable=False),
    # Divergences repaired: the stream ended before last_sequence.
    Column("repairs", Integer, nullable=False, server_default="0"),
    Column("events_republished", BigInteger, nullable=False, server_default="0"),
    Column("last_repaired_at", DateTime(timezone=True)),
)

consumer_positions = Table(
    "consumer_positions",
    metadata,
    Column("group_name", String(100), primary_key=True),
    Column("partition", SmallInteger, primary_key=True, autoincrement=False),
    Column("sequence", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def entry_id(sequence: int) -> str:
    """The stream entry id of a partition's ``sequence``-th event."""
    return f"{sequence}-0"


def sequence_of(stream_id: str) -> int:
    """The sequence number a stream entry id carries (its milliseconds part)."""
    return int(stream_id.partition("-")[0])


async def group_positions(
    connection: AsyncConnection, group: str, partitions: Collection[int]
) -> dict[int, int]:
    """The group's settled sequence per partition; creates the missing rows at 0."""
    await connection.execute(
        insert(consumer_positions)
        .values([{"group_name": group, "partition": p, "sequence": 0} for p in partitions])
        .on_conflict_do_nothing()
    )
    rows = await connection.execute(
        select(consumer_positions.c.partition, consumer_positions.c.sequence).where(
            consumer_positions.c.group_name == group,
            consumer_positions.c.partition.in_(list(partitions)),
        )
    )
    return {row.partition: row.sequence for row in rows}


async def settled_sequences(
    connection: AsyncConnection, groups: Collection[str], partitions: int
) -> dict[int, int]:
    """Per partition, the sequence every one of ``groups`` has settled.

    A group without a position on a partition (a worker that has never run)
    has settled nothing there: it will read the partition from the start.
    """
    rows = await connection.execute(
        select(
            consumer_positions.c.group_name,
            consumer_positions.c.partition,
            consumer_positions.c.sequence,
        ).where(consumer_positions.c.group_name.in_(list(groups)))
    )
    found: Mapping[tuple[str, int], int] = {
        (row.group_name, row.partition): row.sequence for row in rows
    }
    return {
        partition: min((found.get((group, partition), 0) for group in groups), default=0)
        for partition in range(partitions)
    }

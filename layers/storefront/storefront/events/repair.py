"""Repairing a partition's stream that does not end where PostgreSQL says.

Runs in the relay's batch transaction, under the partition's advisory lock,
so no other relay appends meanwhile. Two cases, told apart by comparing the
stream's last id with ``event_partitions.last_sequence``:

* **Behind**: Redis lost entries (``FLUSHALL``, a restart without
  persistence, a failover to a replica that lagged, eviction). Every event of
  the partition that some consumer group has not settled is appended again
  from the outbox, in sequence order, with its original id, after whatever
  the stream still holds. Outbox rows are deleted only once every group has
  settled them (:mod:`.cleanup`), so all of them are still there. Consumers
  skip what they already settled (:mod:`.consumer`), so a republished event
  has its effect once. Counted in ``event_partitions``, logged, and reported
  as the ``StreamRepairs`` / ``EventsRepublished`` metrics.
* **Ahead**: a relay appended a batch and died before its commit. Its
  entries are adopted: their rows are marked published with the sequence the
  stream gave them, so they are not appended a second time.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import Text, cast, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.adapters.redis import RedisClient
from storefront.events.outbox import outbox
from storefront.events.partitions import stream_key
from storefront.events.positions import entry_id, event_partitions, sequence_of, settled_sequences
from storefront.events.streams import StreamEntry, append
from storefront.observability import logger
from storefront.settings import Settings

__all__ = ["Repairs", "repair"]


@dataclass
class Repairs:
    """What the relay found and mended in one invocation."""

    repaired_partitions: list[int] = field(default_factory=list)
    republished: int = 0
    adopted: int = 0

    def merge(self, other: Repairs) -> None:
        self.repaired_partitions += other.repaired_partitions
        self.republished += other.republished
        self.adopted += other.adopted

    def summary(self) -> dict[str, int]:
        return {
            "stream_repairs": len(self.repaired_partitions),
            "events_republished": self.republished,
            "entries_adopted": self.adopted,
        }


async def repair(
    connection: AsyncConnection,
    redis: RedisClient,
    settings: Settings,
    partition: int,
    last_sequence: int,
    tail: str,
    repairs: Repairs,
    groups: Collection[str],
) -> int:
    """Make the stream end where PostgreSQL says; returns the partition's last sequence.

    ``groups``: the deployment's consumer groups, whose positions bound what
    must be republished; with none, everything the outbox still has past the
    stream's end is.
    """
    stream = stream_key(settings.redis_key_prefix, partition)
    found = sequence_of(tail)
    if found > last_sequence:
        return await _adopt(connection, redis, stream, partition, last_sequence, tail, repairs)
    settled = (await settled_sequences(connection, groups, settings.event_partitions))[partition]
    start = max(found, settled)
    republished = 0
    while True:
        rows = (
            await connection.execute(
                select(
                    outbox.c.id,
                    outbox.c.sequence,
                    cast(outbox.c.envelope, Text).label("envelope"),
                    outbox.c.only_group,
                )
                .where(
                    outbox.c.partition == partition,
                    outbox.c.sequence > start,
                    outbox.c.sequence <= last_sequence,
                )
                .order_by(outbox.c.sequence)
                .limit(settings.relay_batch_size)
            )
        ).all()
        if not rows:
            break
        entries = [StreamEntry(r.sequence, r.id, r.envelope, r.only_group) for r in rows]
        # The first append goes after whatever the stream still holds; each
        # next one after the previous.
        moved = await append(redis, stream, found if republished == 0 else start, entries)
        if moved is not None:
            raise RuntimeError(f"stream {stream} moved to {moved} during its repair")
        republished += len(entries)
        start = entries[-1].sequence
    if start < last_sequence:
        # Rows some group had not settled are gone from the outbox: nothing
        # can bring them back. Mark the stream's end, so the relay goes on.
        logger.error(
            "events lost from the outbox before every group settled them",
            extra={"partition": partition, "range": f"{start + 1}..{last_sequence}"},
        )
        await append(
            redis, stream, found if republished == 0 else start, [StreamEntry(last_sequence)]
        )
    await connection.execute(
        update(event_partitions)
        .where(event_partitions.c.partition == partition)
        .values(
            repairs=event_partitions.c.repairs + 1,
            events_republished=event_partitions.c.events_republished + republished,
            last_repaired_at=func.now(),
        )
    )
    repairs.repaired_partitions.append(partition)
    repairs.republished += republished
    logger.warning(
        "event stream lost entries: republished from the outbox",
        extra={
            "partition": partition,
            "stream_ended_at": tail,
            "expected_end": entry_id(last_sequence),
            "settled_by_every_group": settled,
            "republished": republished,
            "range": f"{max(found, settled) + 1}..{last_sequence}",
        },
    )
    return last_sequence


async def _adopt(
    connection: AsyncConnection,
    redis: RedisClient,
    stream: str,
    partition: int,
    last_sequence: int,
    tail: str,
    repairs: Repairs,
) -> int:
    """Take the entries a relay appended before it died as published."""
    after = entry_id(last_sequence) if last_sequence else "0-0"
    adopted = 0
    while True:
        entries = await redis.xrange(stream, min=f"({after}", max=tail, count=1_000)
        if not entries:
            break
        for raw_id, fields in entries:
            after = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            outbox_id = (fields or {}).get(b"outbox_id")
            if outbox_id is None:
                continue
            result = await connection.execute(
                update(outbox)
                .where(
                    outbox.c.id == int(outbox_id),
                    outbox.c.partition == partition,
                    outbox.c.published_at.is_(None),
                )
                .values(sequence=sequence_of(after), published_at=func.now())
            )
            adopted += result.rowcount
    found = sequence_of(tail)
    await connection.execute(
        insert(event_partitions)
        .values(partition=partition, last_sequence=found)
        .on_conflict_do_update(index_elements=["partition"], set_={"last_sequence": found})
    )
    repairs.adopted += adopted
    logger.warning(
        "event stream ahead of the outbox: a relay died after its append; entries adopted",
        extra={"partition": partition, "from": last_sequence + 1, "to": found, "adopted": adopted},
    )
    return found

"""The transactional outbox: events are rows written in the state change's transaction.

Commit-then-publish loses the event when the process dies in between; a row
in the same transaction cannot be lost. ``pg_notify`` inside the transaction
is delivered only at commit, so a waiting relay wakes exactly when there is
something committed to relay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Uuid,
    func,
    insert,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.adapters.database import metadata
from storefront.events.envelope import Event
from storefront.events.partitions import partition_of

NOTIFY_CHANNEL = "storefront_outbox"

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    # Not unique: a dead letter replayed for one group is a row of its own.
    Column("event_id", Uuid, nullable=False, index=True),
    Column("event_type", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("aggregate_type", String(100), nullable=False),
    Column("aggregate_id", String(100), nullable=False),
    Column("partition", SmallInteger, nullable=False),
    Column("envelope", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    # The partition's sequence number, given by the relay when it publishes
    # the row: its stream entry's id is ``<sequence>-0`` (storefront.events.relay).
    Column("sequence", BigInteger),
    # Set on a replayed dead letter: only this consumer group handles it.
    Column("only_group", String(100)),
    # The relay's claim: unpublished rows of one partition in id order.
    Index(
        "ix_outbox_unpublished",
        "partition",
        "id",
        postgresql_where=text("published_at IS NULL"),
    ),
    Index("ix_outbox_published_at", "published_at"),
    # Repair and catch-up read a partition's rows by sequence.
    Index(
        "ix_outbox_partition_sequence",
        "partition",
        "sequence",
        unique=True,
        postgresql_where=text("sequence IS NOT NULL"),
    ),
)


async def add_events(
    connection: AsyncConnection,
    events: Sequence[Event],
    partitions: int,
    *,
    only_group: str | None = None,
) -> list[int]:
    """Write events in the caller's transaction; the relay is woken at commit.

    Returns the rows' outbox ids. ``only_group``: the one consumer group that
    handles them (a replayed dead letter).
    """
    if not events:
        return []
    rows = await connection.execute(
        # NOTIFY rides on the INSERT (RETURNING) instead of a statement of its
        # own: one statement less per writing transaction. PostgreSQL folds
        # identical notifications of one transaction into one, at commit.
        insert(outbox).returning(outbox.c.id, func.pg_notify(NOTIFY_CHANNEL, "")),
        [
            {
                "event_id": event.event_id,
                "event_type": event.event_type,
                "version": event.version,
                "aggregate_type": event.aggregate_type,
                "aggregate_id": event.aggregate_id,
                "partition": partition_of(event.aggregate_id, partitions),
                "envelope": event.model_dump(mode="json"),
                "only_group": only_group,
            }
            for event in events
        ],
    )
    return [row.id for row in rows]


class Outbox(Protocol):
    """Where a use case's events go, in its unit of work's transaction."""

    async def add(self, events: Sequence[Event]) -> None: ...


class SqlOutbox:
    def __init__(self, connection: AsyncConnection, partitions: int) -> None:
        self.connection, self.partitions = connection, partitions

    async def add(self, events: Sequence[Event]) -> None:
        await add_events(self.connection, events, self.partitions)

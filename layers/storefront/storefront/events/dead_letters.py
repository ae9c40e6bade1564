"""Dead letters: events a consumer group gave up on, kept in PostgreSQL.

An event lands here when it cannot be parsed, names an unknown event type or
version, carries an invalid payload, or failed ``worker_max_deliveries``
times. The dead letter is written in the same transaction that moves the
group's position past the event (:mod:`.consumer`): the group goes on with
the partition, and the event is kept where a Redis that loses data cannot
take it.

Operators list, replay and purge dead letters (``storefront dlq``, and the
admin routes in :mod:`.api`). Replay writes the event to the outbox again,
for the group that gave up on it only (``only_group``): the relay gives it a
new place at the end of its partition, the other groups skip it, and the
dead letter is deleted in the same transaction. A replayed event comes after
events of its aggregate published since, so replay is an operator's decision.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storefront.adapters.database import UnitOfWork, metadata
from storefront.errors import Conflict, NotFound
from storefront.events.envelope import Event
from storefront.events.outbox import add_events

__all__ = [
    "DeadLetter",
    "Replayed",
    "count_dead_letters",
    "dead_letters",
    "list_dead_letters",
    "purge",
    "record_dead_letter",
    "replay",
]

REASON_MAX_LENGTH = 1_000

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("group_name", String(100), nullable=False),
    Column("partition", SmallInteger, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    # As it came: an unparseable envelope is often why it is here.
    Column("envelope", Text, nullable=False),
    Column("reason", String(REASON_MAX_LENGTH), nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


class DeadLetter(BaseModel):
    id: int
    reason: str
    deliveries: int
    group: str
    partition: int
    # The event's place in its partition when it failed.
    sequence: int
    failed_at: str
    # Read from the envelope when it parses, for the operator's eye only.
    event_type: str | None = None
    event_id: str | None = None
    aggregate_id: str | None = None
    envelope: str


class Replayed(BaseModel):
    id: int
    group: str
    # The event's new outbox row: the relay publishes it like any other.
    outbox_id: int


async def record_dead_letter(
    connection: AsyncConnection,
    *,
    group: str,
    partition: int,
    sequence: int,
    envelope: str,
    reason: str,
    deliveries: int,
) -> None:
    """Keep one dead letter, in the caller's transaction."""
    await connection.execute(
        insert(dead_letters).values(
            group_name=group,
            partition=partition,
            sequence=sequence,
            envelope=envelope.replace("\x00", "\ufffd"),
            reason=reason[:REASON_MAX_LENGTH].replace("\x00", "\ufffd"),
            deliveries=deliveries,
        )
    )


async def list_dead_letters(engine: AsyncEngine, count: int = 100) -> list[DeadLetter]:
    """The oldest ``count`` dead letters, oldest first."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(dead_letters).order_by(dead_letters.c.id).limit(count)
        )
        return [_dead_letter(row._mapping) for row in rows]


async def count_dead_letters(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(dead_letters)) or 0)


async def replay(engine: AsyncEngine, partitions: int, dead_letter_id: int) -> Replayed:
    """Write a dead letter's event to the outbox again, for its group only."""
    async with UnitOfWork(engine) as uow:
        row = (
            await uow.connection.execute(
                delete(dead_letters)
                .where(dead_letters.c.id == dead_letter_id)
                .returning(dead_letters.c.group_name, dead_letters.c.envelope)
            )
        ).first()
        if row is None:
            raise _not_found(dead_letter_id)
        try:
            event = Event.model_validate_json(row.envelope)
        except ValidationError as error:
            raise Conflict(
                f"Dead letter {dead_letter_id} holds no event that parses, so it cannot be "
                f"replayed; purge it. ({error.error_count()} errors)"
            ) from error
        (outbox_id,) = await add_events(
            uow.connection, [event], partitions, only_group=row.group_name
        )
        await uow.commit()
    return Replayed(id=dead_letter_id, group=row.group_name, outbox_id=outbox_id)


async def purge(engine: AsyncEngine, dead_letter_id: int | None = None) -> int:
    """Delete one dead letter (NotFound if absent), or all of them; returns how many."""
    statement = delete(dead_letters)
    if dead_letter_id is not None:
        statement = statement.where(dead_letters.c.id == dead_letter_id)
    async with UnitOfWork(engine) as uow:
        deleted = (await uow.connection.execute(statement)).rowcount
        await uow.commit()
    if dead_letter_id is not None and not deleted:
        raise _not_found(dead_letter_id)
    return int(deleted)


def _not_found(dead_letter_id: int) -> NotFound:
    return NotFound(f"No dead letter {dead_letter_id}.")


def _dead_letter(row: Any) -> DeadLetter:
    summary: dict[str, object] = {}
    try:
        parsed = json.loads(row["envelope"])
        if isinstance(parsed, dict):
            summary = parsed
    except ValueError:
        pass  # an unparseable envelope is often why it is here; show it raw
    return DeadLetter(
        id=row["id"],
        reason=row["reason"],
        deliveries=row["deliveries"],
        group=row["group_name"],
        partition=row["partition"],
        sequence=row["sequence"],
        failed_at=row["failed_at"].isoformat(),
        event_type=_optional_text(summary.get("event_type")),
        event_id=_optional_text(summary.get("event_id")),
        aggregate_id=_optional_text(summary.get("aggregate_id")),
        envelope=row["envelope"],
    )


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)

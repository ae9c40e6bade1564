"""One stream entry's delivery to a group: parse, route, handle exactly once.

:func:`handle_entry` turns an entry into an :class:`Outcome` or raises:
:class:`PoisonEntry` for what no retry can fix (dead-lettered at once), any
other exception for a failed attempt (retried). The handler runs in one
transaction with the inbox row ``(group, event_id)`` and the events it
emits; a row already there means a redelivery, and nothing is done twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storefront.adapters.database import DatabaseUnavailable, UnitOfWork, is_unavailable
from storefront.events.envelope import PAYLOADS, Event
from storefront.events.handlers import HandlerRegistry
from storefront.events.outbox import add_events, inbox
from storefront.settings import Settings

__all__ = [
    "BatchConnection",
    "ConsumerStats",
    "Entry",
    "Outcome",
    "PoisonEntry",
    "handle_entry",
    "read_reply",
]


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"  # already in the inbox: a redelivery, nothing done
    SKIPPED = "skipped"  # an event type this group does not handle


class PoisonEntry(Exception):
    """An entry no retry can fix: dead-lettered at once."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Entry:
    id: str
    # Empty when the entry was deleted from the stream while pending.
    fields: dict[bytes, bytes]
    # How many times it has been read, this read included.
    deliveries: int = 1

    def delivered(self, deliveries: int) -> Entry:
        return replace(self, deliveries=deliveries)


@dataclass
class ConsumerStats:
    handled: int = 0
    duplicates: int = 0
    skipped: int = 0
    failures: int = 0
    dead_lettered: int = 0
    reclaimed: int = 0
    reads: int = 0
    partitions_held: int = 0

    def count(self, outcome: Outcome) -> None:
        if outcome is Outcome.HANDLED:
            self.handled += 1
        elif outcome is Outcome.DUPLICATE:
            self.duplicates += 1
        else:
            self.skipped += 1

    def summary(self) -> dict[str, int]:
        return {
            "handled": self.handled,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "failures": self.failures,
            "dead_lettered": self.dead_lettered,
            "reclaimed": self.reclaimed,
            "reads": self.reads,
            "partitions_held": self.partitions_held,
        }


class BatchConnection:
    """One pooled connection for the events of one read batch, each event in
    a transaction of its own.

    A checkout pings the server (``pool_pre_ping``), a round trip of its own:
    taken once per batch rather than once per event, that is a good share of
    a small handler's cost (``make bench``, worker). Taken on first use, as
    other groups' events need no database, and dropped after any failure, so
    the next event never starts on a connection in an unknown state.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    async def get(self) -> AsyncConnection:
        if self._connection is None:
            try:
                self._connection = await self._engine.connect()
            except Exception as error:
                if is_unavailable(error):
                    raise DatabaseUnavailable(str(error)) from error
                raise
        return self._connection

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


async def handle_entry(
    entry: Entry, registry: HandlerRegistry, connection: BatchConnection, settings: Settings
) -> Outcome:
    raw = entry.fields.get(b"envelope")
    if raw is None:
        raise PoisonEntry("the entry has no 'envelope' field")
    try:
        event = Event.model_validate_json(raw)
    except ValidationError as error:
        raise PoisonEntry(f"unparseable envelope: {error}") from error
    kind = f"{event.event_type} version {event.version}"
    found = registry.lookup(event)
    if found is None:
        if event.event_type in registry.event_types():
            raise PoisonEntry(f"group {registry.consumer!r} has no handler for {kind}")
        # Known to the process but not handled here: another group's event.
        # Every worker imports every payload module, so "unknown" is real.
        if (event.event_type, event.version) not in PAYLOADS:
            raise PoisonEntry(f"unknown event type {kind}")
        return Outcome.SKIPPED
    payload_type, handler = found
    try:
        payload = payload_type.model_validate(event.payload)
    except ValidationError as error:
        raise PoisonEntry(f"invalid {kind} payload: {error}") from error
    async with UnitOfWork(await connection.get()) as uow:
        recorded = await uow.connection.execute(
            insert(inbox)
            .values(consumer=registry.consumer, event_id=event.event_id)
            .on_conflict_do_nothing()
            .returning(inbox.c.event_id)
        )
        if recorded.first() is None:
            return Outcome.DUPLICATE
        emitted = await handler(payload, event, uow)
        await add_events(uow.connection, emitted, settings.event_partitions)
        await uow.commit()
    return Outcome.HANDLED


def read_reply(reply: Any) -> Iterator[tuple[str, list[Entry]]]:
    """``XREADGROUP``'s reply as (stream, entries), in RESP2 or RESP3 shape."""
    if not reply:
        return  # the block ran out with nothing new
    pairs = reply.items() if isinstance(reply, dict) else reply
    for stream, entries in pairs:
        if isinstance(reply, dict) and entries and isinstance(entries[0], list):
            entries = entries[0]  # RESP3 nests the entry list once more
        yield (
            _text(stream),
            [Entry(id=_text(entry_id), fields=dict(fields or {})) for entry_id, fields in entries],
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

"""One stream entry's delivery to a group: parse, route, handle.

:func:`route_entry` parses an entry and finds its handler, or raises
:class:`PoisonEntry` for what no retry can fix (dead-lettered at once);
:func:`handle` runs handlers inside the caller's transaction (:mod:`.runs`
applies a run of one partition's entries in one), together with the events
they emit and the group's position. Any exception there is a failed attempt
(retried).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from storefront.adapters.database import UnitOfWork
from storefront.events.envelope import Event, Payload, payload_type
from storefront.events.handlers import Handler, HandlerRegistry, RunHandler, UnitOfWorkFactory
from storefront.events.outbox import add_events
from storefront.events.positions import sequence_of
from storefront.settings import Settings

__all__ = [
    "ConsumerStats",
    "Delivery",
    "Entry",
    "Outcome",
    "PoisonEntry",
    "handle",
    "read_reply",
    "route_entry",
]


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"  # at or below the group's position: nothing done
    SKIPPED = "skipped"  # an event type this group does not handle
    DEAD_LETTERED = "dead_lettered"


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

    @property
    def sequence(self) -> int:
        """The partition's sequence number: the entry id's milliseconds part."""
        return sequence_of(self.id)


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

    # Events applied from the outbox because the stream skipped them.
    caught_up: int = 0
    # Transactions committed: one per run of a partition's entries.
    transactions: int = 0
    # Runs redone event by event after a deadlock with another transaction.
    conflicts: int = 0

    def count(self, outcome: Outcome) -> None:
        if outcome is Outcome.HANDLED:
            self.handled += 1
        elif outcome is Outcome.DUPLICATE:
            self.duplicates += 1
        elif outcome is Outcome.DEAD_LETTERED:
            self.dead_lettered += 1
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
            "caught_up": self.caught_up,
            "transactions": self.transactions,
            "conflicts": self.conflicts,
        }


@dataclass(frozen=True)
class Delivery:
    """An entry parsed and routed to this group's handler."""

    event: Event
    payload: Payload
    handler: Handler[Any]
    # Set when the handler takes a run of such events at once.
    run_handler: RunHandler[Any] | None
    # Makes the unit of work the handler takes (its context's).
    unit_of_work: UnitOfWorkFactory


def route_entry(entry: Entry, registry: HandlerRegistry) -> Delivery | None:
    """The entry's delivery, or None when this group skips it; PoisonEntry when
    no retry can ever handle it."""
    if b"missing" in entry.fields:
        return None  # the relay's marker of events lost from the outbox (.repair)
    raw = entry.fields.get(b"envelope")
    if raw is None:
        raise PoisonEntry("the entry has no 'envelope' field")
    only_group = entry.fields.get(b"only_group")
    if only_group is not None and only_group.decode() != registry.consumer:
        return None  # a dead letter replayed for another group
    try:
        event = Event.model_validate_json(raw)
    except ValidationError as error:
        raise PoisonEntry(f"unparseable envelope: {error}") from error
    kind = f"{event.event_type} version {event.version}"
    found = registry.lookup(event)
    if found is None:
        if event.event_type in registry.event_types():
            raise PoisonEntry(f"group {registry.consumer!r} has no handler for {kind}")
        # Another group's event, as long as some context declares it.
        if payload_type(event.event_type, event.version) is None:
            raise PoisonEntry(f"unknown event type {kind}")
        return None
    model, handler = found
    try:
        payload = model.model_validate(event.payload)
    except ValidationError as error:
        raise PoisonEntry(f"invalid {kind} payload: {error}") from error
    return Delivery(event, payload, handler, registry.run_handler(event), registry.unit_of_work)


async def handle(deliveries: Sequence[Delivery], uow: UnitOfWork, settings: Settings) -> None:
    """Handle deliveries in ``uow``'s open transaction (the caller commits): all
    at once through their run handler, or one by one."""
    run_handler = deliveries[0].run_handler
    context = deliveries[0].unit_of_work(uow, settings)
    emitted: list[Event] = []
    if run_handler is not None:
        emitted += await run_handler([(d.payload, d.event) for d in deliveries], context)
    else:
        for delivery in deliveries:
            emitted += await delivery.handler(delivery.payload, delivery.event, context)
    await add_events(uow.connection, emitted, settings.event_partitions)


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

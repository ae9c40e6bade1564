"""One stream entry's delivery to a group: parse, route, handle.

:func:`handle_entry` turns an entry into an :class:`Outcome` or raises:
:class:`PoisonEntry` for what no retry can fix (dead-lettered at once), any
other exception for a failed attempt (retried). It runs inside the caller's
transaction (:mod:`.consumer` applies a run of one partition's entries in
one), together with the events the handler emits and the group's position.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from storefront.adapters.database import UnitOfWork
from storefront.events.envelope import PAYLOADS, Event
from storefront.events.handlers import HandlerRegistry
from storefront.events.outbox import add_events
from storefront.events.positions import sequence_of
from storefront.settings import Settings

__all__ = [
    "ConsumerStats",
    "Entry",
    "Outcome",
    "PoisonEntry",
    "handle_entry",
    "read_reply",
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


async def handle_entry(
    entry: Entry, registry: HandlerRegistry, uow: UnitOfWork, settings: Settings
) -> Outcome:
    """Handle one entry in ``uow``'s open transaction (the caller commits)."""
    raw = entry.fields.get(b"envelope")
    if raw is None:
        raise PoisonEntry("the entry has no 'envelope' field")
    only_group = entry.fields.get(b"only_group")
    if only_group is not None and only_group.decode() != registry.consumer:
        return Outcome.SKIPPED  # a dead letter replayed for another group
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
    emitted = await handler(payload, event, uow)
    await add_events(uow.connection, emitted, settings.event_partitions)
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

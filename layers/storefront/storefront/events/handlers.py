"""Event handlers, registered per payload type.

A handler is a short function: it takes the typed payload, the event it came
in, and the unit of work whose transaction also moves the group's position
past the event; it returns the events it emits, which go to the outbox in
that same transaction. So the effect, the "processed" mark and the
consequences commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from storefront.adapters.database import UnitOfWork
from storefront.events.envelope import Event, Payload

P = TypeVar("P", bound=Payload)
Handler = Callable[[P, Event, UnitOfWork], Awaitable[Sequence[Event]]]


class HandlerRegistry:
    """The handlers of one consumer group, by event type and schema version."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self._handlers: dict[tuple[str, int], tuple[type[Payload], Handler[Any]]] = {}

    def on(self, payload_type: type[P]) -> Callable[[Handler[P]], Handler[P]]:
        def register(handler: Handler[P]) -> Handler[P]:
            key = (payload_type.event_type, payload_type.version)
            self._handlers[key] = (payload_type, handler)
            return handler

        return register

    def lookup(self, event: Event) -> tuple[type[Payload], Handler[Any]] | None:
        return self._handlers.get((event.event_type, event.version))

    def event_types(self) -> set[str]:
        return {event_type for event_type, _ in self._handlers}

"""Event handlers, registered per payload type.

A handler is a short function: it takes the typed payload, the event it came
in, and a unit of work on the transaction that also moves the group's
position past the event; it returns the events it emits, which go to the
outbox in that same transaction. So the effect, the "processed" mark and the
consequences commit together or not at all.

Which unit of work a handler gets is its context's: the registry's
``unit_of_work`` makes it from the run's transaction (the orders context's
owns ``uow.orders``, inventory's ``uow.stock`` ...), so handlers are tested on
a fake one. Without it, handlers get the run's own :class:`UnitOfWork`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from storefront.adapters.database import UnitOfWork
from storefront.events.envelope import Event, Payload
from storefront.settings import Settings

P = TypeVar("P", bound=Payload)
# The unit of work is the context's own (see the module's docstring): Any here.
Handler = Callable[[P, Event, Any], Awaitable[Sequence[Event]]]
# Takes consecutive events of one type at once, in their order: one statement
# for many events where a handler of one event would send several per event.
RunHandler = Callable[[Sequence[tuple[P, Event]], Any], Awaitable[Sequence[Event]]]
# Makes a context's unit of work on the run's open transaction.
UnitOfWorkFactory = Callable[[UnitOfWork, Settings], Any]


def _the_run_itself(uow: UnitOfWork, settings: Settings) -> UnitOfWork:
    return uow


class HandlerRegistry:
    """The handlers of one consumer group, by event type and schema version."""

    def __init__(
        self, consumer: str = "", unit_of_work: UnitOfWorkFactory = _the_run_itself
    ) -> None:
        # The consumer group's name: given by the composition root
        # (storefront.wiring, :meth:`for_group`), not by the context.
        self.consumer = consumer
        self.unit_of_work = unit_of_work
        self._handlers: dict[tuple[str, int], tuple[type[Payload], Handler[Any]]] = {}
        self._run_handlers: dict[tuple[str, int], RunHandler[Any]] = {}

    def on(self, payload_type: type[P]) -> Callable[[Handler[P]], Handler[P]]:
        def register(handler: Handler[P]) -> Handler[P]:
            key = (payload_type.event_type, payload_type.version)
            self._handlers[key] = (payload_type, handler)
            return handler

        return register

    def on_run(self, payload_type: type[P]) -> Callable[[RunHandler[P]], RunHandler[P]]:
        """Register a handler of consecutive events of one type at once.

        It must have the effect of handling them one after the other; a
        single event is handled as a run of one.
        """

        def register(run_handler: RunHandler[P]) -> RunHandler[P]:
            key = (payload_type.event_type, payload_type.version)

            async def one(payload: P, event: Event, uow: UnitOfWork) -> Sequence[Event]:
                return await run_handler([(payload, event)], uow)

            self._handlers[key] = (payload_type, one)
            self._run_handlers[key] = run_handler
            return run_handler

        return register

    def for_group(self, group: str) -> HandlerRegistry:
        """These handlers, run by consumer group ``group``."""
        named = HandlerRegistry(group, self.unit_of_work)
        named._handlers, named._run_handlers = self._handlers, self._run_handlers
        return named

    def lookup(self, event: Event) -> tuple[type[Payload], Handler[Any]] | None:
        return self._handlers.get((event.event_type, event.version))

    def run_handler(self, event: Event) -> RunHandler[Any] | None:
        return self._run_handlers.get((event.event_type, event.version))

    def event_types(self) -> set[str]:
        return {event_type for event_type, _ in self._handlers}

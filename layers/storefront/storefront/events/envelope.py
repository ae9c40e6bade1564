"""The event envelope and the typed payloads it carries.

Every event has its own ``event_id`` from a default *factory* (a default value
would be computed once, at import, and shared by every event). Payload models
declare their type, schema version and aggregate; consumers look them up with
:func:`payload_type` to parse what arrives from a stream.

A payload class registers itself in :data:`PAYLOADS` when its module is
imported. A worker imports only its own group's handlers, so the first time it
meets an event type it does not know, it imports every context's ``events``
module found in the package (:func:`_discover`): no hand-kept list of event
types, and "unknown" still means that no context declares it.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from storefront.ids import new_id


class Payload(BaseModel):
    """Base of every event payload. Subclasses set the three class variables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    version: ClassVar[int] = 1
    aggregate_type: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:
            PAYLOADS[(cls.event_type, cls.version)] = cls


PAYLOADS: dict[tuple[str, int], type[Payload]] = {}


def payload_type(event_type: str, version: int) -> type[Payload] | None:
    """The payload class of an event type and version; None when no context declares it."""
    found = PAYLOADS.get((event_type, version))
    if found is None and _discover():
        found = PAYLOADS.get((event_type, version))
    return found


@cache
def _discover() -> bool:
    """Import ``storefront.<package>.events`` for every package that has one, once."""
    import storefront

    for module in pkgutil.iter_modules(storefront.__path__):
        if module.ispkg and importlib.util.find_spec(f"storefront.{module.name}.events"):
            importlib.import_module(f"storefront.{module.name}.events")
    return True


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(default_factory=new_id)
    event_type: str
    version: int
    aggregate_type: str
    aggregate_id: str
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str | None = None
    causation_id: str | None = None
    payload: dict[str, Any]

    @classmethod
    def of(
        cls,
        payload: Payload,
        aggregate_id: object,
        *,
        correlation_id: str | None = None,
        caused_by: Event | None = None,
    ) -> Event:
        """An event announcing ``payload``; ``caused_by`` links it to its cause."""
        return cls(
            event_type=payload.event_type,
            version=payload.version,
            aggregate_type=payload.aggregate_type,
            aggregate_id=str(aggregate_id),
            correlation_id=caused_by.correlation_id if caused_by else correlation_id,
            causation_id=str(caused_by.event_id) if caused_by else None,
            payload=payload.model_dump(mode="json"),
        )

    def parsed_payload(self) -> Payload:
        """The typed payload; KeyError for an unknown type or version."""
        model = payload_type(self.event_type, self.version)
        if model is None:
            raise KeyError((self.event_type, self.version))
        return model.model_validate(self.payload)

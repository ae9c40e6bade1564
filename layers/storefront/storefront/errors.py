"""Errors the use cases raise; the web layer turns them into problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class DomainError(Exception):
    status = 400
    title = "Bad request"
    # Headers the answer must carry, such as WWW-Authenticate on a 401.
    headers: Mapping[str, str] = MappingProxyType({})

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Forbidden(DomainError):
    """The caller is known and may not do this. Never for another customer's
    order: that answers 404, so its existence does not leak."""

    status = 403
    title = "Forbidden"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class InvalidInput(DomainError):
    """Input that is well-formed but refers to something wrong (a field and a reason)."""

    status = 422
    title = "Unprocessable content"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DependencyUnavailable(RuntimeError):
    """A service the code depends on cannot be reached now (the payment
    provider is down, its breaker open): no fault of the request or event at
    hand, which may succeed when retried later. The event consumer does not
    count such a failure against the event's deliveries, so an outage never
    dead-letters the events that meet it."""

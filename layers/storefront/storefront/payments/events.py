"""Events about an order's payment, from the provider's webhooks (aggregate:
the order, so they follow the order's own events in its partition)."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from storefront.events.envelope import Payload


class PaymentSucceeded(Payload):
    """The provider captured the order's payment (``payment_intent.succeeded``)."""

    event_type: ClassVar[str] = "PaymentSucceeded"
    aggregate_type: ClassVar[str] = "order"
    order_id: UUID
    intent_id: str


class PaymentFailed(Payload):
    """The provider refused the payment or the intent was cancelled
    (``payment_intent.payment_failed``, ``payment_intent.canceled``)."""

    event_type: ClassVar[str] = "PaymentFailed"
    aggregate_type: ClassVar[str] = "order"
    order_id: UUID
    intent_id: str
    reason: str

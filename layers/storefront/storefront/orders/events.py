"""Events about an order. All carry the order id as aggregate id, so every
event of one order -- its own and inventory's -- shares one partition and
keeps its order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel

from storefront.events.envelope import Payload


class OrderLine(BaseModel):
    product_id: UUID
    quantity: int
    unit_price: Decimal


class OrderPlaced(Payload):
    event_type: ClassVar[str] = "OrderPlaced"
    aggregate_type: ClassVar[str] = "order"
    order_id: UUID
    items: list[OrderLine]
    total: Decimal
    currency: str


class OrderAwaitingPayment(Payload):
    """A checkout's order: its stock is held until ``payment_due_at``; the
    payments worker asks the provider for a PaymentIntent of ``total``."""

    event_type: ClassVar[str] = "OrderAwaitingPayment"
    aggregate_type: ClassVar[str] = "order"
    order_id: UUID
    customer_id: str
    items: list[OrderLine]
    total: Decimal
    currency: str
    payment_due_at: datetime


class OrderConfirmed(Payload):
    event_type: ClassVar[str] = "OrderConfirmed"
    aggregate_type: ClassVar[str] = "order"
    order_id: UUID


class OrderRejected(Payload):
    event_type: ClassVar[str] = "OrderRejected"
    aggregate_type: ClassVar[str] = "order"
    order_id: UUID
    reason: str


class OrderCancelled(Payload):
    event_type: ClassVar[str] = "OrderCancelled"
    aggregate_type: ClassVar[str] = "order"
    order_id: UUID
    previous_status: str


class OrderExpired(Payload):
    """Not paid before its ``payment_due_at``: inventory releases its hold,
    payments cancels its PaymentIntent (refunding one captured meanwhile)."""

    event_type: ClassVar[str] = "OrderExpired"
    aggregate_type: ClassVar[str] = "order"
    order_id: UUID


class OrderPaymentFailed(Payload):
    """The provider refused the payment: inventory releases the hold, payments
    cancels the PaymentIntent."""

    event_type: ClassVar[str] = "OrderPaymentFailed"
    aggregate_type: ClassVar[str] = "order"
    order_id: UUID
    reason: str

"""The rest of the shop as payments sees it, for the payment tests: orders
written straight into PostgreSQL (as POST /checkout leaves them), what the
payments context recorded, the events it wrote, and a customer paying at
localstripe."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import stripe
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.events.envelope import Event
from storefront.events.outbox import outbox
from storefront.orders import OrderStatus
from storefront.orders.events import OrderAwaitingPayment
from storefront.orders.tables import orders
from storefront.payments.domain import PaymentRecord
from storefront.payments.repository import SqlPaymentRepository
from storefront.payments.tables import payment_intents, stripe_events
from tests.payments.conftest import TEST_SECRET_KEY, LocalStripe

WEBHOOK = "/payments/stripe/webhook"
# The webhook endpoint's signing secret in the tests' settings.
SECRET = "whsec_storefront_test_0123456789abcdef"


def signature(body: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header, as Stripe computes it: HMAC-SHA256 of
    ``"<t>.<body>"`` with the endpoint's signing secret."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


async def place_order(
    engine: AsyncEngine,
    total: Decimal = Decimal("19.99"),
    currency: str = "EUR",
    status: OrderStatus = OrderStatus.AWAITING_PAYMENT,
) -> OrderAwaitingPayment:
    """An order as checkout writes it (without lines: payments reads none),
    and its OrderAwaitingPayment."""
    order_id = uuid.uuid4()
    due = datetime.now(UTC) + timedelta(minutes=15)
    async with engine.begin() as connection:
        await connection.execute(
            insert(orders).values(
                id=order_id,
                customer_id="alice",
                status=status.value,
                total=total,
                currency=currency,
                email="alice@example.com",
                payment_due_at=due,
            )
        )
    return OrderAwaitingPayment(
        order_id=order_id,
        customer_id="alice",
        items=[],
        total=total,
        currency=currency,
        payment_due_at=due,
    )


async def set_order_status(engine: AsyncEngine, order_id: UUID, status: OrderStatus) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(orders).where(orders.c.id == order_id).values(status=status.value)
        )


async def payment_of(engine: AsyncEngine, order_id: UUID) -> PaymentRecord | None:
    async with engine.connect() as connection:
        return await SqlPaymentRepository(connection).of_order(order_id)


async def record_payment(engine: AsyncEngine, record: PaymentRecord) -> None:
    async with engine.begin() as connection:
        await SqlPaymentRepository(connection).add(record)


async def count_payments(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        found = await connection.scalar(select(func.count()).select_from(payment_intents))
    return int(found or 0)


async def recorded_stripe_events(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(stripe_events.c.event_id, stripe_events.c.event_type).order_by(
                stripe_events.c.received_at, stripe_events.c.event_id
            )
        )
        return [(row.event_id, row.event_type) for row in rows]


async def outbox_events(engine: AsyncEngine, *event_types: str) -> list[Event]:
    """The events of these types in the outbox, in outbox order."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.envelope)
            .where(outbox.c.event_type.in_(event_types))
            .order_by(outbox.c.id)
        )
        return [Event.model_validate(row.envelope) for row in rows]


def stripe_client(server: LocalStripe, retries: int = 1) -> stripe.StripeClient:
    """What the customer's browser and the tests use to talk to localstripe."""
    return stripe.StripeClient(
        TEST_SECRET_KEY,
        base_addresses={"api": server.url},
        max_network_retries=retries,
        http_client=stripe.HTTPXClient(),
    )


async def pay(server: LocalStripe, intent_id: str) -> None:
    """What a front end does with the client secret: attach a card, confirm.
    (localstripe refuses a payment_method passed to confirm itself.)"""
    client = stripe_client(server)
    await client.v1.payment_intents.update_async(intent_id, {"payment_method": "pm_card_visa"})
    paid = await client.v1.payment_intents.confirm_async(intent_id)
    assert paid.status == "succeeded"


async def stripe_event_about(server: LocalStripe, event_type: str, intent_id: str) -> str:
    """The JSON body Stripe sends for ``event_type`` about the intent, as
    localstripe recorded the event."""
    events = await stripe_client(server).v1.events.list_async({"type": event_type, "limit": 100})
    for event in events.data:
        if event.data.object["id"] == intent_id:
            return json.dumps(event.to_dict())
    raise AssertionError(f"localstripe has no {event_type} about {intent_id}")


def intent_event(
    event_type: str, intent_id: str, status: str, **intent_fields: Any
) -> dict[str, Any]:
    """A Stripe event about a PaymentIntent, shaped as Stripe sends it."""
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(datetime.now(UTC).timestamp()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": {
            "object": {
                "id": intent_id,
                "object": "payment_intent",
                "amount": 1999,
                "currency": "eur",
                "client_secret": f"{intent_id}_secret_abcdef",
                "metadata": {},
                "status": status,
            }
            | intent_fields
        },
    }

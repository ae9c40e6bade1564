"""The payment's part of checkout end to end: the outbox, the relay, the
payments and orders workers, localstripe and the webhook, all real.

An order awaiting payment gets its PaymentIntent; the customer pays; Stripe's
webhook announces it; the orders worker confirms the order; the customer
cancels it; the payments worker refunds the payment.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from uuid import UUID

import httpx
import pytest

from storefront import wiring
from storefront.auth.principal import Principal
from storefront.events.consumer import run_consumer
from storefront.events.envelope import Event
from storefront.events.handlers import HandlerRegistry
from storefront.events.outbox import add_events
from storefront.events.relay import relay_once
from storefront.orders import OrderStatus, statuses_of
from storefront.orders.handlers import order_handlers
from storefront.orders.service import cancel_order
from storefront.orders.unit_of_work import SqlOrdersUnitOfWork
from storefront.payments import StripeGateway
from storefront.payments.handlers import payment_handlers
from storefront.resources import Resources
from storefront.settings import Settings
from tests.integration.streams import budget, fast_settings
from tests.payments.conftest import TEST_SECRET_KEY, LocalStripe
from tests.payments.shop import (
    SECRET,
    WEBHOOK,
    pay,
    payment_of,
    place_order,
    signature,
    stripe_client,
    stripe_event_about,
)

pytestmark = pytest.mark.usefixtures("no_orders")


@pytest.fixture
async def shop(settings: Settings, localstripe: LocalStripe) -> AsyncIterator[Resources]:
    """One deployment's resources: every function on the same partitions."""
    configured = fast_settings(
        settings,
        event_partitions=settings.event_partitions,
        stripe_webhook_secret=SECRET,
        stripe_secret_key=TEST_SECRET_KEY,
        stripe_api_base=localstripe.url,
    )
    resources = Resources.from_settings(configured)
    yield resources
    await resources.close()


async def run_worker(shop: Resources, registry: HandlerRegistry, group: str) -> None:
    """The relay's pass, then one short invocation of ``group``'s worker."""
    await relay_once(shop.engine, shop.redis, shop.settings)
    await run_consumer(
        registry.for_group(group), shop.engine, shop.redis, shop.settings, budget(1.0)
    )


async def status_of(shop: Resources, order_id: UUID) -> OrderStatus:
    async with shop.engine.connect() as connection:
        return (await statuses_of(connection, [order_id]))[order_id]


async def test_an_order_is_paid_confirmed_cancelled_and_refunded(
    shop: Resources, localstripe: LocalStripe
) -> None:
    payments = payment_handlers(lambda: shop, StripeGateway.from_settings)
    order = await place_order(shop.engine)
    async with shop.engine.begin() as connection:  # as checkout writes it
        await add_events(
            connection, [Event.of(order, order.order_id)], shop.settings.event_partitions
        )

    await run_worker(shop, payments, "payments")
    record = await payment_of(shop.engine, order.order_id)
    assert record is not None

    await pay(localstripe, record.intent_id)
    body = await stripe_event_about(localstripe, "payment_intent.succeeded", record.intent_id)
    transport = httpx.ASGITransport(app=wiring.orders_app(lambda: shop))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as stripe_calls:
        answer = await stripe_calls.post(
            WEBHOOK, content=body.encode(), headers={"Stripe-Signature": signature(body)}
        )
    assert answer.json() == {"event_id": json.loads(body)["id"], "outcome": "applied"}

    await run_worker(shop, order_handlers, "orders")
    assert await status_of(shop, order.order_id) is OrderStatus.CONFIRMED

    alice = Principal(subject="alice")
    await cancel_order(order.order_id, alice, SqlOrdersUnitOfWork(shop.engine, shop.settings))
    await run_worker(shop, payments, "payments")

    refunded = await payment_of(shop.engine, order.order_id)
    assert refunded is not None
    assert (refunded.status, refunded.intent_id) == ("succeeded", record.intent_id)
    assert refunded.refund_id is not None
    stored = await stripe_client(localstripe).v1.refunds.retrieve_async(refunded.refund_id)
    assert (stored.payment_intent, stored.amount) == (record.intent_id, 1999)

"""Order emails on real PostgreSQL and moto's SES server (real HTTP, boto3's sesv2).

What SES received is read back from moto (``/moto-api/data.json``): one
email per event however often the event is handled, none for an order
without an address; and the one documented window, where an email SES
accepted is sent again, counted.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.database import UnitOfWork
from storefront.catalog.tables import products
from storefront.events.consumer import run_consumer
from storefront.events.envelope import Event, Payload
from storefront.events.handlers import HandlerRegistry
from storefront.events.outbox import add_events
from storefront.events.partitions import partition_of
from storefront.events.relay import relay_once
from storefront.ids import new_id
from storefront.notifications.deliveries import DeliveryInFlight
from storefront.notifications.emails import Email
from storefront.notifications.handlers import notification_handlers
from storefront.notifications.mailer import (
    Mailer,
    MailerOutcomeUnknown,
    MailerRefused,
    MailerUnavailable,
    SesMailer,
)
from storefront.notifications.tables import email_deliveries
from storefront.observability import metrics
from storefront.orders.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderExpired,
    OrderPaymentFailed,
)
from storefront.orders.tables import order_items, orders
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.embedded import LOCAL_AWS_CREDENTIALS, free_port
from tests.integration.streams import budget, fast_settings

SENDER = "orders@storefront.example"
REGION = "us-east-1"


@dataclass
class MotoSes:
    url: str

    def messages(self) -> list[dict[str, Any]]:
        """Every email moto's SES accepted: source, destinations, subject, body (the HTML)."""
        with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=10) as answer:
            data = json.load(answer)
        found: list[dict[str, Any]] = data.get("ses", {}).get("Message", [])
        return found

    def messages_to(self, address: str) -> list[dict[str, Any]]:
        return [m for m in self.messages() if address in m["destinations"]["ToAddresses"]]


@pytest.fixture(scope="module")
def ses() -> Iterator[MotoSes]:
    """moto's server in a thread, with the sender verified (SES sends from
    verified identities only); boto3 finds moto's dummy credentials in the environment."""
    import boto3
    from moto.server import ThreadedMotoServer

    saved = {name: os.environ.get(name) for name in LOCAL_AWS_CREDENTIALS}
    os.environ.update(LOCAL_AWS_CREDENTIALS)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        client = boto3.session.Session().client("sesv2", endpoint_url=url, region_name=REGION)
        client.create_email_identity(EmailIdentity=SENDER)
        yield MotoSes(url)
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
async def mail_resources(settings: Settings, ses: MotoSes) -> AsyncIterator[Resources]:
    """The worker's resources: the suite's servers, moto's SES, short worker rounds."""
    resources = Resources.from_settings(
        fast_settings(settings, ses_endpoint_url=ses.url, aws_region=REGION, email_sender=SENDER)
    )
    yield resources
    await resources.close()


@pytest.fixture
def clean_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def metric(name: str) -> float:
    found = metrics.metric_set.get(name)
    return sum(found["Value"]) if found else 0.0


class FailOnce:
    """SES, but one email to ``address`` fails with ``error``: before it is
    sent, or after SES accepted it (an attempt that died before its mark)."""

    def __init__(
        self, inner: Mailer, address: str, error: Exception, *, after_sending: bool = False
    ) -> None:
        self.inner, self.address, self.after_sending = inner, address, after_sending
        self.error: Exception | None = error

    async def send(self, email: Email, *, sender: str, reference: str) -> str:
        if email.to != self.address or self.error is None:
            return await self.inner.send(email, sender=sender, reference=reference)
        error, self.error = self.error, None
        if self.after_sending:
            await self.inner.send(email, sender=sender, reference=reference)
        raise error


def registry_for(
    resources: Resources, mailer: Callable[[Settings], Mailer] = SesMailer.from_settings
) -> HandlerRegistry:
    return notification_handlers(lambda: resources, mailer).for_group("notifications")


def product(product_id: UUID, name: str, price: Decimal) -> dict[str, object]:
    return {
        "id": product_id,
        "sku": f"SKU-{product_id.hex}",
        "name": name,
        "price": price,
        "currency": "EUR",
    }


async def place_order(engine: AsyncEngine, email: str | None, order_id: UUID | None = None) -> UUID:
    """An order of two mugs and a tea, written as checkout writes it."""
    order_id = order_id or new_id()
    mug, tea = new_id(), new_id()
    async with engine.begin() as connection:
        await connection.execute(
            insert(products),
            [
                product(mug, "Blue mug", Decimal("12.50")),
                product(tea, "Green tea", Decimal("6.00")),
            ],
        )
        await connection.execute(
            insert(orders).values(
                id=order_id,
                customer_id="ada",
                status="CONFIRMED",
                total=Decimal("31.00"),
                currency="EUR",
                email=email,
            )
        )
        await connection.execute(
            insert(order_items),
            [
                {
                    "order_id": order_id,
                    "product_id": mug,
                    "quantity": 2,
                    "unit_price": Decimal("12.50"),
                },
                {
                    "order_id": order_id,
                    "product_id": tea,
                    "quantity": 1,
                    "unit_price": Decimal("6.00"),
                },
            ],
        )
    return order_id


def address() -> str:
    return f"customer-{new_id().hex}@example.com"


def event_of(payload: Payload, order_id: UUID) -> Event:
    return Event.of(payload, order_id, correlation_id=f"corr-{new_id().hex[:12]}")


async def handle(registry: HandlerRegistry, event: Event, engine: AsyncEngine) -> None:
    """What the worker does with one delivery: the handler, in a transaction it commits."""
    found = registry.lookup(event)
    assert found is not None, event.event_type
    payload_type, handler = found
    async with UnitOfWork(engine) as uow:
        await handler(payload_type.model_validate(event.payload), event, uow)
        await uow.commit()


async def delivery(engine: AsyncEngine, event: Event) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(email_deliveries).where(email_deliveries.c.event_id == event.event_id)
            )
        ).first()
    return None if row is None else dict(row._mapping)


async def test_a_confirmed_order_gets_one_email_however_often_its_event_is_handled(
    mail_resources: Resources, ses: MotoSes, caplog: pytest.LogCaptureFixture
) -> None:
    to = address()
    order_id = await place_order(mail_resources.engine, to)
    event = event_of(OrderConfirmed(order_id=order_id), order_id)
    registry = registry_for(mail_resources)

    with caplog.at_level(logging.INFO):
        await handle(registry, event, mail_resources.engine)
        await handle(registry, event, mail_resources.engine)  # redelivered

    (message,) = ses.messages_to(to)
    assert message["source"] == SENDER
    assert message["subject"] == f"Order {order_id.hex[-8:].upper()} is confirmed"
    assert "Blue mug" in message["body"]
    assert "31.00 EUR" in message["body"]
    recorded = await delivery(mail_resources.engine, event)
    assert recorded is not None
    assert (recorded["order_id"], recorded["kind"]) == (order_id, "confirmation")
    assert recorded["message_id"] == message["id"]
    assert recorded["sent_at"] is not None
    (sent,) = [r for r in caplog.records if r.getMessage() == "order email sent"]
    assert getattr(sent, "correlation_id", None) == event.correlation_id
    assert getattr(sent, "message_id", None) == message["id"]
    (skipped,) = [r for r in caplog.records if r.getMessage().startswith("order email already")]
    assert getattr(skipped, "correlation_id", None) == event.correlation_id


DECLINED = "card_declined: Your card was declined."


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (
            lambda order_id: OrderCancelled(order_id=order_id, previous_status="CONFIRMED"),
            "Your payment will be refunded in full.",
        ),
        (
            lambda order_id: OrderExpired(order_id=order_id),
            "We did not receive its payment in time",
        ),
        (
            lambda order_id: OrderPaymentFailed(order_id=order_id, reason=DECLINED),
            f"The payment provider said: {DECLINED}",
        ),
    ],
)
async def test_a_cancelled_order_gets_one_email_saying_why(
    mail_resources: Resources, ses: MotoSes, payload: Callable[[UUID], Payload], why: str
) -> None:
    to = address()
    order_id = await place_order(mail_resources.engine, to)
    event = event_of(payload(order_id), order_id)
    registry = registry_for(mail_resources)

    await handle(registry, event, mail_resources.engine)
    await handle(registry, event, mail_resources.engine)

    (message,) = ses.messages_to(to)
    assert message["subject"] == f"Order {order_id.hex[-8:].upper()} has been cancelled"
    assert why in message["body"]
    recorded = await delivery(mail_resources.engine, event)
    assert recorded is not None
    assert recorded["kind"] == "cancellation"


async def test_an_order_without_an_email_gets_none(mail_resources: Resources, ses: MotoSes) -> None:
    order_id = await place_order(mail_resources.engine, email=None)
    events = [
        event_of(OrderConfirmed(order_id=order_id), order_id),
        event_of(OrderCancelled(order_id=order_id, previous_status="CONFIRMED"), order_id),
        event_of(OrderExpired(order_id=order_id), order_id),
        event_of(OrderPaymentFailed(order_id=order_id, reason="declined"), order_id),
    ]
    registry = registry_for(mail_resources)
    before = len(ses.messages())

    for event in events:
        await handle(registry, event, mail_resources.engine)

    assert len(ses.messages()) == before
    assert [await delivery(mail_resources.engine, event) for event in events] == [None] * 4


async def test_an_email_ses_refuses_leaves_no_claim(
    mail_resources: Resources, ses: MotoSes
) -> None:
    to = address()
    order_id = await place_order(mail_resources.engine, to)
    event = event_of(OrderConfirmed(order_id=order_id), order_id)
    unverified = Resources.from_settings(
        mail_resources.settings.model_copy(update={"email_sender": "nobody@unverified.example"})
    )
    try:
        with pytest.raises(MailerRefused, match="MessageRejected"):
            await handle(registry_for(unverified), event, unverified.engine)
    finally:
        await unverified.close()

    assert ses.messages_to(to) == []
    assert await delivery(mail_resources.engine, event) is None


def same_partition_orders(partitions: int) -> tuple[UUID, UUID]:
    """Two order ids whose events share one partition, so one run holds both."""
    first = new_id()
    while True:
        second = new_id()
        if partition_of(str(second), partitions) == partition_of(str(first), partitions):
            return first, second


async def deliver(resources: Resources, registry: HandlerRegistry) -> None:
    """One worker invocation: relay the outbox, then consume the group."""
    settings = resources.settings
    await relay_once(resources.engine, resources.redis, settings)
    await run_consumer(registry, resources.engine, resources.redis, settings, budget(0.5))


@pytest.mark.usefixtures("clean_metrics")
async def test_through_the_worker_a_failure_later_in_a_run_sends_no_email_twice(
    mail_resources: Resources, ses: MotoSes
) -> None:
    """A run's events share one transaction: when SES throttles a later one,
    the run rolls back and the earlier events are applied again. Their emails,
    marked sent at once, are not sent again."""
    settings = mail_resources.settings
    first_to, second_to = address(), address()
    first_id, second_id = same_partition_orders(settings.event_partitions)
    await place_order(mail_resources.engine, first_to, first_id)
    await place_order(mail_resources.engine, second_to, second_id)
    events = [
        event_of(OrderConfirmed(order_id=first_id), first_id),
        event_of(OrderConfirmed(order_id=second_id), second_id),
    ]
    async with mail_resources.engine.begin() as connection:
        await add_events(connection, events, settings.event_partitions)
    throttled = FailOnce(
        SesMailer.from_settings(settings),
        second_to,
        MailerUnavailable("Throttling", throttled=True),
    )
    registry = registry_for(mail_resources, lambda _: throttled)

    with pytest.raises(MailerUnavailable):
        await deliver(mail_resources, registry)
    assert (len(ses.messages_to(first_to)), len(ses.messages_to(second_to))) == (1, 0)
    assert await delivery(mail_resources.engine, events[1]) is None  # the claim was released

    await deliver(mail_resources, registry)
    await deliver(mail_resources, registry)

    assert (len(ses.messages_to(first_to)), len(ses.messages_to(second_to))) == (1, 1)
    assert (metric("EmailsSent"), metric("EmailResent")) == (2, 0)
    async with mail_resources.engine.connect() as connection:
        dead = await connection.scalar(text("SELECT count(*) FROM dead_letters"))
    assert dead == 0


@pytest.mark.usefixtures("clean_metrics")
async def test_the_window_an_email_accepted_before_its_attempt_died_is_sent_again_and_counted(
    mail_resources: Resources, ses: MotoSes, caplog: pytest.LogCaptureFixture
) -> None:
    to = address()
    order_id = await place_order(mail_resources.engine, to)
    event = event_of(OrderConfirmed(order_id=order_id), order_id)
    died = FailOnce(
        SesMailer.from_settings(mail_resources.settings),
        to,
        MailerOutcomeUnknown("the answer was lost"),
        after_sending=True,
    )
    registry = registry_for(mail_resources, lambda _: died)

    with pytest.raises(MailerOutcomeUnknown):
        await handle(registry, event, mail_resources.engine)
    claimed = await delivery(mail_resources.engine, event)
    assert claimed is not None
    assert claimed["sent_at"] is None

    # While the claim may still belong to a live attempt, nothing is sent.
    with pytest.raises(DeliveryInFlight):
        await handle(registry, event, mail_resources.engine)
    assert len(ses.messages_to(to)) == 1

    # Once it is older than any live attempt can be, the redelivery sends again.
    async with mail_resources.engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE email_deliveries SET claimed_at = claimed_at - interval '1 hour'"
                " WHERE event_id = :event_id"
            ),
            {"event_id": event.event_id},
        )
    with caplog.at_level(logging.INFO):
        await handle(registry, event, mail_resources.engine)
        await handle(registry, event, mail_resources.engine)

    first, second = ses.messages_to(to)
    recorded = await delivery(mail_resources.engine, event)
    assert recorded is not None
    assert recorded["message_id"] == second["id"] != first["id"]
    assert (metric("EmailsSent"), metric("EmailResent")) == (1, 1)
    (resent,) = [r for r in caplog.records if r.getMessage().startswith("order email sent again")]
    assert resent.levelno == logging.WARNING
    assert getattr(resent, "correlation_id", None) == event.correlation_id

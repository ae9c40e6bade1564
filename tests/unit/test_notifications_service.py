"""The rules of order emails, on fakes: once per event, none without an
address, a certain failure leaves no claim, a possible one is counted when sent again."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import pytest

from storefront.errors import DependencyUnavailable
from storefront.events.envelope import Event
from storefront.ids import new_id
from storefront.notifications import emails
from storefront.notifications.deliveries import Claim
from storefront.notifications.emails import Email
from storefront.notifications.mailer import (
    MailerOutcomeUnknown,
    MailerRefused,
    MailerUnavailable,
)
from storefront.notifications.service import send_order_email
from storefront.observability import metrics
from storefront.orders import OrderLineSummary, OrderStatus, OrderSummary
from storefront.orders.events import OrderConfirmed

SENDER = "orders@storefront.example"
MUG = new_id()


class FakeOrders:
    def __init__(self, *orders: OrderSummary) -> None:
        self.orders = {order.order_id: order for order in orders}

    async def summary(self, order_id: UUID) -> OrderSummary | None:
        return self.orders.get(order_id)

    async def product_names(self, product_ids: Sequence[UUID]) -> dict[UUID, str]:
        return {product_id: "Mug" for product_id in product_ids if product_id == MUG}


@dataclass
class Delivery:
    order_id: UUID
    kind: str
    message_id: str | None = None


class FakeLedger:
    """email_deliveries in memory; an unsent claim here is always a stale one."""

    def __init__(self) -> None:
        self.rows: dict[UUID, Delivery] = {}

    async def claim(self, event_id: UUID, order_id: UUID, kind: str) -> Claim:
        found = self.rows.get(event_id)
        if found is None:
            self.rows[event_id] = Delivery(order_id, kind)
            return Claim.FIRST
        return Claim.AGAIN if found.message_id is None else Claim.SENT

    async def release(self, event_id: UUID) -> None:
        if event_id in self.rows and self.rows[event_id].message_id is None:
            del self.rows[event_id]

    async def mark_sent(self, event_id: UUID, message_id: str) -> None:
        self.rows[event_id].message_id = message_id


class FakeMailer:
    """Sends into a list; fails with the errors it is given, first to last."""

    def __init__(self, *failures: Exception, fail_after_sending: bool = False) -> None:
        self.failures = list(failures)
        self.fail_after_sending = fail_after_sending
        self.sent: list[tuple[Email, str, str]] = []

    async def send(self, email: Email, *, sender: str, reference: str) -> str:
        if self.failures and not self.fail_after_sending:
            raise self.failures.pop(0)
        self.sent.append((email, sender, reference))
        if self.failures:
            raise self.failures.pop(0)  # accepted, and then the answer was lost
        return f"message-{len(self.sent)}"


def summary(email: str | None = "ada@customer.example") -> OrderSummary:
    return OrderSummary(
        order_id=new_id(),
        customer_id="ada",
        email=email,
        status=OrderStatus.CONFIRMED,
        reason=None,
        total=Decimal("25.00"),
        currency="EUR",
        lines=(OrderLineSummary(MUG, 2, Decimal("12.50")),),
    )


def confirmed(order: OrderSummary) -> Event:
    return Event.of(
        OrderConfirmed(order_id=order.order_id), order.order_id, correlation_id="corr-42"
    )


@pytest.fixture
def counted() -> Iterator[None]:
    """The shared EMF metrics, empty at the start and cleared at the end."""
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def metric(name: str) -> float:
    found = metrics.metric_set.get(name)
    return sum(found["Value"]) if found else 0.0


async def send(
    event: Event, order: OrderSummary, ledger: FakeLedger, mailer: FakeMailer
) -> str | None:
    return await send_order_email(
        event,
        order.order_id,
        emails.confirmed(),
        orders=FakeOrders(order),
        ledger=ledger,
        mailer=mailer,
        sender=SENDER,
    )


async def test_an_event_sends_one_email_however_often_it_is_handled(
    counted: None,
) -> None:
    order, ledger, mailer = summary(), FakeLedger(), FakeMailer()
    event = confirmed(order)

    first = await send(event, order, ledger, mailer)
    again = await send(event, order, ledger, mailer)

    assert (first, again) == ("message-1", None)
    ((email, sender, reference),) = mailer.sent
    assert (email.to, sender, reference) == ("ada@customer.example", SENDER, str(event.event_id))
    assert "Mug" in email.text
    assert ledger.rows[event.event_id] == Delivery(order.order_id, "confirmation", "message-1")
    assert (metric("EmailsSent"), metric("EmailResent")) == (1, 0)


async def test_each_event_of_an_order_has_its_own_email() -> None:
    order, ledger, mailer = summary(), FakeLedger(), FakeMailer()
    await send(confirmed(order), order, ledger, mailer)
    await send(confirmed(order), order, ledger, mailer)
    assert len(mailer.sent) == 2


async def test_an_order_without_an_address_gets_no_email_and_no_claim() -> None:
    order, ledger, mailer = summary(email=None), FakeLedger(), FakeMailer()
    assert await send(confirmed(order), order, ledger, mailer) is None
    assert (mailer.sent, ledger.rows) == ([], {})


async def test_an_unknown_order_gets_no_email() -> None:
    order, ledger, mailer = summary(), FakeLedger(), FakeMailer()
    event = confirmed(order)
    result = await send_order_email(
        event,
        order.order_id,
        emails.confirmed(),
        orders=FakeOrders(),
        ledger=ledger,
        mailer=mailer,
        sender=SENDER,
    )
    assert (result, mailer.sent, ledger.rows) == (None, [], {})


@pytest.mark.parametrize(
    "failure", [MailerUnavailable("SES answered Throttling"), MailerRefused("MessageRejected")]
)
async def test_a_send_that_certainly_failed_leaves_no_claim(
    failure: Exception, counted: None
) -> None:
    order, ledger, mailer = summary(), FakeLedger(), FakeMailer(failure)
    event = confirmed(order)

    with pytest.raises(type(failure)):
        await send(event, order, ledger, mailer)
    assert ledger.rows == {}
    # The retry is a first attempt, not a resend.
    assert await send(event, order, ledger, mailer) == "message-1"
    assert (metric("EmailsSent"), metric("EmailResent")) == (1, 0)


def test_an_unavailable_ses_does_not_count_against_the_event() -> None:
    assert issubclass(MailerUnavailable, DependencyUnavailable)
    assert issubclass(MailerOutcomeUnknown, DependencyUnavailable)
    assert not issubclass(MailerRefused, DependencyUnavailable)


async def test_a_send_that_may_have_reached_ses_is_counted_when_sent_again(
    counted: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The documented window: accepted by SES, and the attempt died before its mark."""
    order, ledger = summary(), FakeLedger()
    event = confirmed(order)
    lost = FakeMailer(MailerOutcomeUnknown("read timeout"), fail_after_sending=True)

    with pytest.raises(MailerOutcomeUnknown):
        await send(event, order, ledger, lost)
    assert ledger.rows[event.event_id].message_id is None  # the claim stays

    mailer = FakeMailer()
    with caplog.at_level(logging.INFO):
        assert await send(event, order, ledger, mailer) == "message-1"

    assert len(lost.sent) + len(mailer.sent) == 2
    assert (metric("EmailsSent"), metric("EmailResent")) == (1, 1)
    (resent,) = [r for r in caplog.records if r.getMessage().startswith("order email sent again")]
    assert resent.levelno == logging.WARNING
    assert getattr(resent, "correlation_id", None) == "corr-42"


async def test_the_log_line_of_an_email_carries_the_events_correlation_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    order, ledger, mailer = summary(), FakeLedger(), FakeMailer()
    event = confirmed(order)
    with caplog.at_level(logging.INFO):
        await send(event, order, ledger, mailer)

    (line,) = [r for r in caplog.records if r.getMessage() == "order email sent"]
    assert getattr(line, "correlation_id", None) == "corr-42"
    assert getattr(line, "event_id", None) == str(event.event_id)
    assert getattr(line, "order_id", None) == str(order.order_id)
    assert getattr(line, "message_id", None) == "message-1"
    # The customer's address is not logged.
    assert "ada@customer.example" not in str(vars(line))

"""The payments worker's rules (storefront.payments.service) on an in-memory
unit of work and a scripted provider: the cases localstripe cannot play."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Self
from uuid import UUID

import pytest

from storefront.orders import OrderStatus
from storefront.payments import Intent, PaymentRefused, Refund
from storefront.payments.domain import PaymentRecord
from storefront.payments.service import call_off_payment, refund_unwanted_payment, request_payment
from tests.unit.fakes import FakeOutbox


class FakePayments:
    def __init__(self) -> None:
        self.rows: dict[UUID, PaymentRecord] = {}
        self.stripe_events: dict[str, str] = {}

    async def of_order(self, order_id: UUID, *, for_update: bool = False) -> PaymentRecord | None:
        return self.rows.get(order_id)

    async def of_intent(self, intent_id: str, *, for_update: bool = False) -> PaymentRecord | None:
        return next((row for row in self.rows.values() if row.intent_id == intent_id), None)

    async def add(self, record: PaymentRecord) -> None:
        self.rows[record.order_id] = record

    async def set_status(self, order_id: UUID, status: str) -> None:
        self.rows[order_id] = replace(self.rows[order_id], status=status)

    async def record_refund(self, order_id: UUID, refund_id: str) -> None:
        self.rows[order_id] = replace(self.rows[order_id], status="succeeded", refund_id=refund_id)

    async def record_stripe_event(self, event_id: str, event_type: str) -> bool:
        if event_id in self.stripe_events:
            return False
        self.stripe_events[event_id] = event_type
        return True


class FakeOrderStatuses:
    def __init__(self) -> None:
        self.statuses: dict[UUID, OrderStatus] = {}

    async def statuses_of(self, order_ids: Sequence[UUID]) -> dict[UUID, OrderStatus]:
        return {i: self.statuses[i] for i in order_ids if i in self.statuses}


class FakePaymentsUnitOfWork:
    """The worker's rules run in a run's transaction, which the consumer
    commits: entering and committing are never asked of this one."""

    def __init__(self) -> None:
        self.payments = FakePayments()
        self.orders = FakeOrderStatuses()
        self.outbox = FakeOutbox()

    async def __aenter__(self) -> Self:
        raise AssertionError("the rules do not open transactions")

    async def __aexit__(self, *exc: object) -> None:
        raise AssertionError("the rules do not close transactions")

    async def commit(self) -> None:
        raise AssertionError("the rules do not commit")


class ScriptedProvider:
    """A provider whose intents are in the status the test says."""

    def __init__(self) -> None:
        self.statuses: dict[str, str] = {}
        self.calls: list[str] = []

    def intent(self, intent_id: str) -> Intent:
        return Intent(intent_id, f"{intent_id}_secret", self.statuses[intent_id], 1000, "EUR")

    async def create_intent(self, order_id: UUID | str, amount: Decimal, currency: str) -> Intent:
        self.calls.append("create")
        intent_id = f"pi_{len(self.statuses)}"
        self.statuses[intent_id] = "requires_payment_method"
        return self.intent(intent_id)

    async def retrieve_intent(self, intent_id: str) -> Intent:
        return self.intent(intent_id)

    async def cancel_intent(self, intent_id: str) -> Intent:
        self.calls.append("cancel")
        if self.statuses[intent_id] not in ("succeeded", "processing", "canceled"):
            self.statuses[intent_id] = "canceled"
        return self.intent(intent_id)

    async def refund(self, intent_id: str) -> Refund:
        self.calls.append("refund")
        if self.statuses[intent_id] != "succeeded":
            raise PaymentRefused("Cannot refund a payment that did not succeed.")
        return Refund(f"re_{intent_id}", "succeeded")


@pytest.fixture
def uow() -> FakePaymentsUnitOfWork:
    return FakePaymentsUnitOfWork()


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


async def awaiting(uow: FakePaymentsUnitOfWork, provider: ScriptedProvider) -> PaymentRecord:
    order_id = uuid.uuid4()
    uow.orders.statuses[order_id] = OrderStatus.AWAITING_PAYMENT
    record = await request_payment(order_id, Decimal("10"), "EUR", uow, provider)
    assert record is not None
    return record


async def test_a_processing_payment_is_left_to_finish_and_refunded_if_it_succeeds(
    uow: FakePaymentsUnitOfWork, provider: ScriptedProvider
) -> None:
    record = await awaiting(uow, provider)
    provider.statuses[record.intent_id] = "processing"  # a bank debit, under way
    uow.orders.statuses[record.order_id] = OrderStatus.EXPIRED

    called_off = await call_off_payment(record.order_id, uow, provider)

    # Not cancellable, not captured yet: nothing to refund.
    assert called_off is not None
    assert (called_off.status, called_off.refund_id) == ("processing", None)
    provider.statuses[record.intent_id] = "succeeded"  # then its webhook: PaymentSucceeded
    uow.payments.rows[record.order_id] = replace(called_off, status="succeeded")
    refunded = await refund_unwanted_payment(record.order_id, record.intent_id, uow, provider)
    assert refunded is not None
    assert refunded.refund_id == f"re_{record.intent_id}"
    assert provider.calls == ["create", "cancel", "refund"]


async def test_a_payment_recorded_as_succeeded_is_refunded_without_cancelling(
    uow: FakePaymentsUnitOfWork, provider: ScriptedProvider
) -> None:
    record = await awaiting(uow, provider)
    provider.statuses[record.intent_id] = "succeeded"
    await uow.payments.set_status(record.order_id, "succeeded")  # the webhook said so
    uow.orders.statuses[record.order_id] = OrderStatus.CANCELLED

    await call_off_payment(record.order_id, uow, provider)
    await call_off_payment(record.order_id, uow, provider)

    assert provider.calls == ["create", "refund"]


@pytest.mark.parametrize(
    "status", [OrderStatus.CONFIRMED, OrderStatus.CANCELLED, OrderStatus.EXPIRED]
)
async def test_only_an_order_awaiting_payment_gets_an_intent(
    uow: FakePaymentsUnitOfWork, provider: ScriptedProvider, status: OrderStatus
) -> None:
    order_id = uuid.uuid4()
    uow.orders.statuses[order_id] = status

    assert await request_payment(order_id, Decimal("10"), "EUR", uow, provider) is None
    assert provider.calls == []


async def test_a_payment_on_an_intent_not_on_record_is_not_refunded_here(
    uow: FakePaymentsUnitOfWork, provider: ScriptedProvider
) -> None:
    record = await awaiting(uow, provider)
    uow.orders.statuses[record.order_id] = OrderStatus.EXPIRED

    await refund_unwanted_payment(record.order_id, "pi_other", uow, provider)

    assert provider.calls == ["create"]

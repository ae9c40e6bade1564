"""storefront.payments.gateway against a real localstripe."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
import stripe

from storefront.adapters.circuit_breaker import CircuitBreaker
from storefront.payments import PaymentProviderUnavailable, PaymentRefused, StripeGateway
from storefront.settings import Settings
from tests.payments.conftest import TEST_SECRET_KEY, LocalStripe, running_localstripe

RETRIES = 1


class CountingHttpClient(stripe.HTTPXClient):
    """Counts the requests that reach the network, retries included, and
    notes the idempotency key each one carries."""

    def __init__(self) -> None:
        super().__init__(timeout=10)
        self.attempts = 0
        self.idempotency_keys: list[str | None] = []

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        self.attempts += 1
        self.idempotency_keys.append(headers.get("Idempotency-Key"))
        return await super().request_async(method, url, headers, post_data)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def sdk(server: LocalStripe, http_client: stripe.HTTPClient | None = None) -> stripe.StripeClient:
    return stripe.StripeClient(
        TEST_SECRET_KEY,
        base_addresses={"api": server.url},
        max_network_retries=RETRIES,
        http_client=http_client or stripe.HTTPXClient(),
    )


@pytest.fixture
def gateway(localstripe: LocalStripe) -> StripeGateway:
    # Built as a deployment builds it: from settings.
    settings = Settings(stripe_secret_key=TEST_SECRET_KEY, stripe_api_base=localstripe.url)
    return StripeGateway.from_settings(settings)


async def test_an_intent_takes_euros_in_cents(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    intent = await gateway.create_intent(uuid.uuid4(), Decimal("12.50"), "EUR")

    assert intent.status == "requires_payment_method"
    assert intent.client_secret.startswith(f"{intent.id}_secret_")
    stored = await sdk(localstripe).v1.payment_intents.retrieve_async(intent.id)
    assert (stored.amount, stored.currency) == (1250, "eur")


async def test_an_intent_takes_yen_as_they_are(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    intent = await gateway.create_intent(uuid.uuid4(), Decimal("500"), "JPY")

    stored = await sdk(localstripe).v1.payment_intents.retrieve_async(intent.id)
    assert (stored.amount, stored.currency) == (500, "jpy")


async def test_a_card_pays_an_intent_and_a_refund_returns_it(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    intent = await gateway.create_intent(uuid.uuid4(), Decimal("19.99"), "EUR")
    client = sdk(localstripe)
    # What a front end does with the client secret: attach a card, confirm.
    # localstripe refuses a payment_method passed to confirm itself.
    await client.v1.payment_intents.update_async(intent.id, {"payment_method": "pm_card_visa"})
    paid = await client.v1.payment_intents.confirm_async(intent.id)
    assert paid.status == "succeeded"

    refund = await gateway.refund(intent.id)

    assert refund.status == "succeeded"
    stored = await client.v1.refunds.retrieve_async(refund.id)
    assert (stored.amount, stored.payment_intent) == (1999, intent.id)


async def test_an_unpaid_intent_is_cancelled(gateway: StripeGateway) -> None:
    intent = await gateway.create_intent(uuid.uuid4(), Decimal("5"), "EUR")

    cancelled = await gateway.cancel_intent(intent.id)

    assert (cancelled.id, cancelled.status) == (intent.id, "canceled")


async def test_cancelling_a_paid_intent_says_it_succeeded_for_the_caller_to_refund(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    intent = await gateway.create_intent(uuid.uuid4(), Decimal("8"), "EUR")
    client = sdk(localstripe)
    await client.v1.payment_intents.update_async(intent.id, {"payment_method": "pm_card_visa"})
    await client.v1.payment_intents.confirm_async(intent.id)

    answer = await gateway.cancel_intent(intent.id)

    assert (answer.id, answer.status, answer.amount, answer.currency) == (
        intent.id,
        "succeeded",
        800,
        "EUR",
    )


async def test_cancelling_twice_is_no_error(gateway: StripeGateway) -> None:
    intent = await gateway.create_intent(uuid.uuid4(), Decimal("5"), "EUR")
    await gateway.cancel_intent(intent.id)

    again = await gateway.cancel_intent(intent.id)

    assert again.status == "canceled"


async def test_cancelling_an_intent_the_provider_does_not_know_is_refused(
    gateway: StripeGateway,
) -> None:
    with pytest.raises(PaymentRefused):
        await gateway.cancel_intent("pi_nobody_made")


async def test_an_intent_names_its_order_and_is_retrieved_as_made(
    gateway: StripeGateway, localstripe: LocalStripe
) -> None:
    order_id = uuid.uuid4()
    intent = await gateway.create_intent(order_id, Decimal("12.50"), "EUR")

    retrieved = await gateway.retrieve_intent(intent.id)

    assert retrieved == intent
    stored = await sdk(localstripe).v1.payment_intents.retrieve_async(intent.id)
    assert stored.metadata["order_id"] == str(order_id)


async def test_asking_again_for_an_orders_intent_sends_the_same_idempotency_key(
    localstripe: LocalStripe,
) -> None:
    http = CountingHttpClient()
    gateway = StripeGateway(sdk(localstripe, http), CircuitBreaker(cooldown_seconds=30))
    order_id = uuid.uuid4()

    await gateway.create_intent(order_id, Decimal("10"), "EUR")
    await gateway.create_intent(order_id, Decimal("10"), "EUR")

    # Stripe answers the second with the first intent (localstripe ignores the key).
    assert http.idempotency_keys == [f"order-{order_id}"] * 2


async def test_a_refusal_is_no_outage(localstripe: LocalStripe) -> None:
    breaker = CircuitBreaker(cooldown_seconds=30)
    gateway = StripeGateway(sdk(localstripe), breaker)
    unpaid = await gateway.create_intent(uuid.uuid4(), Decimal("5"), "EUR")

    with pytest.raises(PaymentRefused):
        await gateway.refund(unpaid.id)
    assert not breaker.is_open


@pytest.fixture
def own_localstripe() -> Iterator[LocalStripe]:
    # Its own server: this test stops it, which the others must not see.
    with running_localstripe() as server:
        yield server


async def test_the_breaker_fails_fast_while_the_provider_is_down(
    own_localstripe: LocalStripe,
) -> None:
    clock = Clock()
    breaker = CircuitBreaker(cooldown_seconds=30, clock=clock)
    http = CountingHttpClient()
    gateway = StripeGateway(sdk(own_localstripe, http), breaker)
    await gateway.create_intent(uuid.uuid4(), Decimal("10"), "EUR")
    assert http.attempts == 1

    own_localstripe.stop()
    with pytest.raises(PaymentProviderUnavailable):
        await gateway.create_intent(uuid.uuid4(), Decimal("10"), "EUR")
    # The SDK retried before the call counted as a failure.
    assert http.attempts == 1 + 1 + RETRIES
    assert breaker.is_open

    with pytest.raises(PaymentProviderUnavailable):
        await gateway.create_intent(uuid.uuid4(), Decimal("10"), "EUR")
    assert http.attempts == 1 + 1 + RETRIES  # failed at once: no request made

    own_localstripe.start()
    clock.now += 31  # the cooldown ends: the next call tries the provider again
    intent = await gateway.create_intent(uuid.uuid4(), Decimal("10"), "EUR")

    assert intent.status == "requires_payment_method"
    assert not breaker.is_open

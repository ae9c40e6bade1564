"""The payment provider, behind a small interface: Stripe through its SDK.

The payments worker (storefront.payments.handlers) creates one PaymentIntent
per order and cancels or refunds it as the order's saga decides. Its
correctness rests on PostgreSQL, not on the provider: it records the intent
id with the order in the same transaction as its progress, so a retried event
finds the intent it already made.

``stripe`` is imported where a call is made, never at module level: it
weighs tens of milliseconds of cold start that functions making no payment
should not pay (import time is cold-start time).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, TypeVar
from uuid import UUID

from storefront.adapters.circuit_breaker import CircuitBreaker
from storefront.adapters.endpoints import given_or_stored_secret
from storefront.errors import DependencyUnavailable
from storefront.payments.amounts import minor_units
from storefront.settings import Settings

if TYPE_CHECKING:
    import stripe
    from stripe.params import PaymentIntentCreateParams

T = TypeVar("T")


class PaymentConfigurationError(RuntimeError):
    pass


class PaymentProviderUnavailable(DependencyUnavailable):
    """The provider cannot be reached now (or failed just before): try later.
    The worker's event is not charged a delivery for it (storefront.events.consumer)."""


class PaymentRefused(RuntimeError):
    """The provider answered, and said no (a bad request, a refused refund)."""


# Where an intent cannot be cancelled any more: what cancelling it answers.
PAST_CANCELLING = frozenset({"succeeded", "canceled", "processing"})


@dataclass(frozen=True)
class Intent:
    id: str
    client_secret: str
    status: str
    # In the currency's minor units, as the provider counts; the currency in
    # capitals, as orders write it.
    amount: int
    currency: str


@dataclass(frozen=True)
class Refund:
    id: str
    status: str


class PaymentGateway(Protocol):
    async def create_intent(self, order_id: UUID | str, amount: Decimal, currency: str) -> Intent:
        """One intent for the order, however often it is asked for."""
        ...

    async def retrieve_intent(self, intent_id: str) -> Intent: ...

    async def cancel_intent(self, intent_id: str) -> Intent:
        """Cancels the intent. One past cancelling comes back as it stands
        (see :data:`PAST_CANCELLING`): ``succeeded`` is for the caller to
        refund, ``processing`` to wait for; cancelling twice is no error."""
        ...

    async def refund(self, intent_id: str) -> Refund:
        """Refunds a captured intent in full."""
        ...


class StripeGateway:
    """Stripe's async methods, on the container's one event loop.

    The SDK's ``*_async`` methods go through httpx (the ``stripe[async]``
    extra), so a payment never blocks the loop and needs no thread. The
    httpx client binds to the loop that first uses it, which is why one
    gateway lives per container, on the loop that Mangum and the workers keep.

    Retries are the SDK's own (``max_network_retries``, with backoff, on
    connection errors and the answers Stripe marks retryable). The breaker
    sits outside them: once a call has failed after its retries, the next
    ones fail at once for the cooldown instead of each waiting on timeouts.
    """

    def __init__(self, client: stripe.StripeClient, breaker: CircuitBreaker) -> None:
        self._client = client
        self._breaker = breaker

    @classmethod
    def from_settings(
        cls, settings: Settings, breaker: CircuitBreaker | None = None
    ) -> StripeGateway:
        import stripe

        base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        client = stripe.StripeClient(
            _secret_key(settings),
            # stripe does not export its BaseAddresses TypedDict to annotate with
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=settings.stripe_max_network_retries,
            http_client=stripe.HTTPXClient(timeout=settings.stripe_timeout_seconds),
        )
        return cls(client, breaker or CircuitBreaker(settings.stripe_breaker_cooldown_seconds))

    async def create_intent(self, order_id: UUID | str, amount: Decimal, currency: str) -> Intent:
        params: PaymentIntentCreateParams = {
            "amount": minor_units(amount, currency),
            "currency": currency.lower(),
            # The webhook's fallback to find the order of an intent it has no
            # record of; and what the Stripe dashboard shows.
            "metadata": {"order_id": str(order_id)},
        }
        # Stripe answers a repeated key with the first intent, so a retry after
        # a lost answer makes no second one. localstripe ignores the header,
        # and the key expires after 24 hours at Stripe: the worker's guarantee
        # is the intent id it records in PostgreSQL, not this key.
        options: stripe.RequestOptions = {"idempotency_key": f"order-{order_id}"}
        intent = await self._call(
            lambda: self._client.v1.payment_intents.create_async(params, options)
        )
        return _intent(intent)

    async def retrieve_intent(self, intent_id: str) -> Intent:
        intent = await self._call(lambda: self._client.v1.payment_intents.retrieve_async(intent_id))
        return _intent(intent)

    async def cancel_intent(self, intent_id: str) -> Intent:
        try:
            intent = await self._call(
                lambda: self._client.v1.payment_intents.cancel_async(intent_id)
            )
        except PaymentRefused:
            # Stripe refuses to cancel an intent that succeeded, is processing
            # or was cancelled (payment_intent_unexpected_state; localstripe
            # says only 400): what it is now tells the caller what to do.
            current = await self.retrieve_intent(intent_id)
            if current.status in PAST_CANCELLING:
                return current
            raise
        return _intent(intent)

    async def refund(self, intent_id: str) -> Refund:
        # One full refund per intent, even when a retry repeats the request.
        options: stripe.RequestOptions = {"idempotency_key": f"refund-{intent_id}"}
        refund = await self._call(
            lambda: self._client.v1.refunds.create_async({"payment_intent": intent_id}, options)
        )
        return Refund(id=refund.id, status=refund.status or "pending")

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        if self._breaker.is_open:
            raise PaymentProviderUnavailable(
                "the payment provider failed just now; not retried yet"
            )
        import stripe

        try:
            result = await request()
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as error:
            # Unreachable, 5xx or throttled, after the SDK's retries.
            self._breaker.record_failure()
            raise PaymentProviderUnavailable(type(error).__name__) from error
        except stripe.StripeError as error:
            # An answer, even a refusal, means the provider is up.
            self._breaker.record_success()
            raise PaymentRefused(error.user_message or type(error).__name__) from error
        self._breaker.record_success()
        return result


def _intent(intent: stripe.PaymentIntent) -> Intent:
    return Intent(
        id=intent.id,
        client_secret=intent.client_secret or "",
        status=intent.status,
        amount=intent.amount,
        currency=intent.currency.upper(),
    )


def _secret_key(settings: Settings) -> str:
    return given_or_stored_secret(
        settings.stripe_secret_key,
        settings.stripe_secret_arn,
        names=("STRIPE_SECRET_KEY", "STRIPE_SECRET_ARN"),
        error=PaymentConfigurationError,
    )

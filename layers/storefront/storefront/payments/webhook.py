"""Stripe's webhook: a verified event about a PaymentIntent becomes the
order's PaymentSucceeded or PaymentFailed.

Stripe delivers at least once, retries for days and does not keep order, so:

* each event's id is recorded in the transaction of its effect
  (``stripe_events``): a duplicate or a replay changes nothing;
* a settled intent (succeeded, canceled) never changes again, and a late
  event about it is recorded and ignored: ``payment_intent.payment_failed``
  after ``payment_intent.succeeded`` leaves the order paid;
* an event type or an intent we do not know is recorded, answered 200 (Stripe
  would retry anything else) and ignored.

The body is verified before anything is read from it: HMAC-SHA256 with the
endpoint's signing secret over ``"<t>.<body>"``, ``t`` within the tolerance
(``stripe.Webhook.construct_event``). Neither the secret nor the body is ever
logged: the body holds the intent's client secret.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from storefront.adapters.endpoints import given_or_stored_secret
from storefront.errors import DomainError
from storefront.events.envelope import Event, Payload
from storefront.observability import logger
from storefront.payments.events import PaymentFailed, PaymentSucceeded
from storefront.payments.gateway import PaymentConfigurationError
from storefront.payments.unit_of_work import PaymentsUnitOfWork
from storefront.settings import Settings

__all__ = [
    "InvalidWebhook",
    "StripeEvent",
    "WebhookOutcome",
    "apply_stripe_event",
    "verified_event",
    "webhook_secret",
]

SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"
CANCELED = "payment_intent.canceled"
# Longest reason a PaymentFailed carries (a decline's message can be long).
REASON_LENGTH = 200


class InvalidWebhook(DomainError):
    """No signature, a signature that does not verify the body, a timestamp
    outside the tolerance (a replay), or a body that is no Stripe event."""

    status = 400
    title = "Bad request"


class WebhookOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


class IntentSnapshot(BaseModel):
    """What the webhook reads of a payment_intent.* event's PaymentIntent."""

    model_config = ConfigDict(frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=255)]
    status: Annotated[str, Field(min_length=1, max_length=40)]
    metadata: dict[str, Any] = {}
    cancellation_reason: str | None = None
    last_payment_error: dict[str, Any] | None = None


class StripeEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=255)]
    type: Annotated[str, Field(min_length=1, max_length=100)]
    # Set for the payment_intent.* events the webhook applies.
    intent: IntentSnapshot | None = None

    @classmethod
    def of(cls, values: dict[str, Any]) -> StripeEvent:
        """From a Stripe event's JSON; ValueError if it is not one."""
        envelope = _Envelope.model_validate(values)
        intent = None
        if envelope.type in (SUCCEEDED, FAILED, CANCELED):
            intent = IntentSnapshot.model_validate(envelope.data.object)
        return cls(id=envelope.id, type=envelope.type, intent=intent)


class _Data(BaseModel):
    object: dict[str, Any]


class _Envelope(BaseModel):
    id: str
    type: str
    data: _Data


def webhook_secret(settings: Settings) -> str:
    return given_or_stored_secret(
        settings.stripe_webhook_secret,
        settings.stripe_webhook_secret_arn,
        names=("STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET_ARN"),
        error=PaymentConfigurationError,
    )


def verified_event(
    payload: bytes, signature: str | None, secret: str, tolerance_seconds: int
) -> StripeEvent:
    """The event ``payload`` holds, if ``signature`` (the Stripe-Signature
    header) proves Stripe signed it with ``secret`` within the tolerance."""
    # Imported here: the orders function pays for the SDK only when Stripe calls.
    import stripe

    try:
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance_seconds)
    except stripe.SignatureVerificationError as error:
        # Its message says what failed, never the header, body or secret.
        logger.warning("stripe webhook refused", extra={"reason": error.user_message})
        raise InvalidWebhook("The Stripe-Signature header does not verify this body.") from None
    except (ValueError, TypeError, AttributeError):
        # Signed, so Stripe's; but not JSON, not UTF-8, or no event.
        raise InvalidWebhook("The body is not a Stripe event.") from None
    try:
        return StripeEvent.of(event.to_dict())
    except ValueError:
        raise InvalidWebhook("The body is not a Stripe event Storefront can read.") from None


async def apply_stripe_event(
    event: StripeEvent, uow: PaymentsUnitOfWork, correlation_id: str | None = None
) -> WebhookOutcome:
    """Record the event and apply it, in one transaction."""
    async with uow:
        if not await uow.payments.record_stripe_event(event.id, event.type):
            return WebhookOutcome.DUPLICATE
        outcome = await _apply(event, uow, correlation_id)
        await uow.commit()
    return outcome


async def _apply(
    event: StripeEvent, uow: PaymentsUnitOfWork, correlation_id: str | None
) -> WebhookOutcome:
    intent = event.intent
    if intent is None:
        return WebhookOutcome.IGNORED  # a type this webhook does not apply
    record = await uow.payments.of_intent(intent.id, for_update=True)
    if record is not None:
        if record.settled:
            return WebhookOutcome.IGNORED  # late or reordered: the intent is settled
        await uow.payments.set_status(record.order_id, intent.status)
        order_id = record.order_id
    else:
        found = await _order_of_unrecorded(intent, uow)
        if found is None:
            return WebhookOutcome.IGNORED
        order_id = found
    await uow.outbox.add(
        [Event.of(_payload(event.type, intent, order_id), order_id, correlation_id=correlation_id)]
    )
    return WebhookOutcome.APPLIED


async def _order_of_unrecorded(intent: IntentSnapshot, uow: PaymentsUnitOfWork) -> UUID | None:
    """The order an intent we have no record of names in its metadata, if it
    is one of ours without an intent on record (the worker's record was rolled
    back after the provider made the intent, and is not made again yet)."""
    try:
        order_id = UUID(str(intent.metadata.get("order_id")))
    except ValueError:
        return None
    if order_id not in await uow.orders.statuses_of([order_id]):
        return None  # another deployment's, sharing the Stripe account
    if await uow.payments.of_order(order_id) is not None:
        return None  # the order pays through another intent
    logger.warning(
        "stripe event about an intent not on record",
        extra={"order_id": str(order_id), "intent_id": intent.id},
    )
    return order_id


def _payload(event_type: str, intent: IntentSnapshot, order_id: UUID) -> Payload:
    if event_type == SUCCEEDED:
        return PaymentSucceeded(order_id=order_id, intent_id=intent.id)
    return PaymentFailed(order_id=order_id, intent_id=intent.id, reason=_reason(event_type, intent))


def _reason(event_type: str, intent: IntentSnapshot) -> str:
    if event_type == CANCELED:
        reason = f"canceled ({intent.cancellation_reason or 'no reason given'})"
    else:
        error = intent.last_payment_error or {}
        code = error.get("decline_code") or error.get("code") or "payment_failed"
        message = error.get("message")
        reason = f"{code}: {message}" if message else str(code)
    return reason[:REASON_LENGTH]

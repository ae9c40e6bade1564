"""The payment provider's route: Stripe's webhook, served by the orders function.

No bearer token and no per-caller rate limit (storefront.wiring serves it
unmetered): Stripe proves who it is with the body's signature, and retries
what is not answered 2xx, so a limit would only delay its events.

Metrics (the template's alarms): ``StripeWebhookRejected`` for each call
refused (400: a signature that does not verify, a replay, no signing secret
configured), ``StripeWebhookFailed`` for each verified call that failed
inside (5xx), which Stripe retries.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.metrics import MetricUnit
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from storefront.observability import logger, metrics
from storefront.payments.gateway import PaymentConfigurationError
from storefront.payments.unit_of_work import SqlPaymentsUnitOfWork
from storefront.payments.webhook import (
    InvalidWebhook,
    WebhookOutcome,
    apply_stripe_event,
    verified_event,
    webhook_secret,
)
from storefront.settings import Settings
from storefront.web.dependencies import CorrelationId, Engine, SettingsDep
from storefront.web.problems import documented

__all__ = ["router"]

router = APIRouter(tags=["payments"])


class WebhookReceipt(BaseModel):
    """What became of a Stripe event: applied, a duplicate of one received
    before, or recorded and ignored (a type or an intent Storefront does not
    act on, or a late event about a settled intent)."""

    event_id: str
    outcome: WebhookOutcome


# The body is read raw (the signature covers its bytes), so FastAPI does not
# describe it: what Stripe sends, as far as the webhook reads it.
_STRIPE_EVENT: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A Stripe event (docs.stripe.com/api/events/object)",
                    "required": ["id", "type", "data"],
                    "properties": {
                        "id": {"type": "string"},
                        "type": {"type": "string"},
                        "data": {
                            "type": "object",
                            "required": ["object"],
                            "properties": {"object": {"type": "object"}},
                        },
                    },
                }
            }
        },
    }
}

SignatureHeader = Annotated[
    str | None,
    Header(
        alias="Stripe-Signature",
        description="t=<unix time>,v1=<HMAC-SHA256 of '<t>.<body>' with the endpoint's "
        "signing secret>; required: a request without it is refused",
    ),
]


@router.post(
    "/payments/stripe/webhook",
    response_model=WebhookReceipt,
    summary="Receive a Stripe event",
    description="Stripe's webhook endpoint: payment_intent.succeeded, "
    "payment_intent.payment_failed and payment_intent.canceled settle the order's "
    "payment; every other verified event is recorded and ignored. An event is applied "
    "once, however often Stripe sends it.",
    responses=documented(
        _400="No Stripe-Signature, one that does not verify the body, one signed "
        "longer ago than the tolerance (a replay), a body that is no Stripe event, or "
        "no signing secret configured"
    ),
    openapi_extra=_STRIPE_EVENT,
)
async def stripe_webhook(
    request: Request,
    engine: Engine,
    settings: SettingsDep,
    correlation_id: CorrelationId,
    stripe_signature: SignatureHeader = None,
) -> WebhookReceipt:
    try:
        event = verified_event(
            await request.body(),
            stripe_signature,
            _signing_secret(settings),
            settings.stripe_webhook_tolerance_seconds,
        )
        uow = SqlPaymentsUnitOfWork(engine, settings)
        outcome = await apply_stripe_event(event, uow, correlation_id)
    except InvalidWebhook:
        metrics.add_metric(name="StripeWebhookRejected", unit=MetricUnit.Count, value=1)
        raise
    except Exception:
        metrics.add_metric(name="StripeWebhookFailed", unit=MetricUnit.Count, value=1)
        raise
    logger.info(
        "stripe event received",
        extra={"stripe_event_id": event.id, "stripe_event_type": event.type, "outcome": outcome},
    )
    return WebhookReceipt(event_id=event.id, outcome=outcome)


def _signing_secret(settings: Settings) -> str:
    try:
        return webhook_secret(settings)
    except PaymentConfigurationError:
        # A deployment without one verifies nothing, so it accepts nothing: a
        # refusal (Stripe retries it for days), not a 500 for any caller.
        logger.error("no stripe webhook signing secret configured")
        raise InvalidWebhook("This deployment has no Stripe webhook signing secret.") from None

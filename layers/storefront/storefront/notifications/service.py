"""The use case: tell an order's customer, by email, what an event did to it.

At most one email per event, but for one window (storefront.notifications.handlers
says which): the delivery is claimed before the send and marked sent right
after it; the metric ``EmailResent`` counts the emails sent on a claim that an
earlier attempt had left unmarked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from aws_lambda_powertools.metrics import MetricUnit

from storefront.events.envelope import Event
from storefront.notifications.deliveries import Claim, DeliveryLedger
from storefront.notifications.emails import Notice, compose
from storefront.notifications.mailer import Mailer, MailerRefused, MailerUnavailable
from storefront.observability import logger, metrics
from storefront.orders import OrderSummary

__all__ = ["OrderDetails", "send_order_email"]


class OrderDetails(Protocol):
    """What an email says of an order: the orders context's summary and the
    catalog's product names."""

    async def summary(self, order_id: UUID) -> OrderSummary | None: ...

    async def product_names(self, product_ids: Sequence[UUID]) -> dict[UUID, str]: ...


async def send_order_email(
    event: Event,
    order_id: UUID,
    notice: Notice,
    *,
    orders: OrderDetails,
    ledger: DeliveryLedger,
    mailer: Mailer,
    sender: str,
) -> str | None:
    """Email the order's customer once for ``event``; returns the message id,
    or None when no email was sent (no address, or sent already)."""
    context: dict[str, Any] = {
        "correlation_id": event.correlation_id,
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "order_id": str(order_id),
        "kind": str(notice.kind),
    }
    order = await orders.summary(order_id)
    if order is None or not order.email:
        # Orders placed without an address (POST /orders) get no email.
        why = "no such order" if order is None else "the order has no email address"
        logger.info(f"order email not sent: {why}", extra=context)
        return None
    # Composed before the claim: a template error must not leave a claim
    # that would make the next attempt look like a second send.
    email = compose(notice, order, await orders.product_names([x.product_id for x in order.lines]))
    claim = await ledger.claim(event.event_id, order_id, notice.kind)
    if claim is Claim.SENT:
        logger.info("order email already sent: not sent again", extra=context)
        return None
    try:
        message_id = await mailer.send(email, sender=sender, reference=str(event.event_id))
    except Exception as error:
        if claim is Claim.FIRST and isinstance(error, MailerUnavailable | MailerRefused):
            # Certainly not sent: the next attempt is a first one.
            await ledger.release(event.event_id)
        logger.warning(
            "order email not sent: the provider failed",
            extra=context | {"error": f"{type(error).__name__}: {error}"},
        )
        raise
    await ledger.mark_sent(event.event_id, message_id)
    metrics.add_metric(name="EmailsSent", unit=MetricUnit.Count, value=1)
    if claim is Claim.AGAIN:
        metrics.add_metric(name="EmailResent", unit=MetricUnit.Count, value=1)
        logger.warning(
            "order email sent again: an earlier attempt claimed it and may have sent it",
            extra=context | {"message_id": message_id},
        )
    else:
        logger.info("order email sent", extra=context | {"message_id": message_id})
    return message_id

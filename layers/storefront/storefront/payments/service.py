"""What the payments worker decides: one PaymentIntent per order that awaits
its payment, cancelled when the order will not be paid for, refunded once
captured (compensation).

Each rule asks the provider only after PostgreSQL says there is something to
do: an order that no longer awaits its payment gets no intent, an intent on
record is not asked for twice, a refund on record is not made twice. So an
event handled again after its commit (a redelivery) calls the provider no
more. An event handled again after a rollback (its run failed further on)
calls it once more, with the same idempotency key: Stripe answers with the
first intent or refund (for 24 hours), so that makes no second one either.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from storefront.observability import logger
from storefront.orders import OrderStatus
from storefront.payments.domain import PaymentRecord
from storefront.payments.gateway import PaymentGateway
from storefront.payments.unit_of_work import PaymentsUnitOfWork

__all__ = ["call_off_payment", "refund_unwanted_payment", "request_payment"]

# Orders that will never be paid for: a payment captured for one is refunded.
UNPAID_FOR = frozenset(
    {
        OrderStatus.CANCELLED,
        OrderStatus.EXPIRED,
        OrderStatus.PAYMENT_FAILED,
        OrderStatus.REJECTED,
    }
)


async def request_payment(
    order_id: UUID, total: Decimal, currency: str, uow: PaymentsUnitOfWork, gateway: PaymentGateway
) -> PaymentRecord | None:
    """The order's PaymentIntent, asked of the provider and recorded; None if
    the order no longer awaits its payment, or already has an intent."""
    statuses = await uow.orders.statuses_of([order_id])
    if statuses.get(order_id) is not OrderStatus.AWAITING_PAYMENT:
        return None  # expired, cancelled or paid since: nothing to pay
    if await uow.payments.of_order(order_id) is not None:
        return None  # a redelivery: the intent is on record
    intent = await gateway.create_intent(order_id, total, currency)
    record = PaymentRecord(
        order_id=order_id,
        intent_id=intent.id,
        client_secret=intent.client_secret,
        status=intent.status,
        amount=intent.amount,
        currency=intent.currency,
    )
    await uow.payments.add(record)
    logger.info("payment intent created", extra={"order_id": str(order_id), "intent_id": intent.id})
    return record


async def call_off_payment(
    order_id: UUID, uow: PaymentsUnitOfWork, gateway: PaymentGateway
) -> PaymentRecord | None:
    """The order will not be paid for (expired, its payment failed, cancelled)
    or was paid for and is cancelled: cancel its intent, or refund it if it
    was captured. None if it has no intent.

    An intent the provider is still processing cannot be cancelled: its
    status is recorded, and its ``payment_intent.succeeded``, if it comes,
    is refunded then (:func:`refund_unwanted_payment`).
    """
    record = await uow.payments.of_order(order_id, for_update=True)
    if record is None or record.refund_id is not None or record.status == "canceled":
        return record
    if record.status != "succeeded":
        intent = await gateway.cancel_intent(record.intent_id)
        if intent.status != "succeeded":
            await uow.payments.set_status(order_id, intent.status)
            logger.info(
                "payment intent called off",
                extra={"order_id": str(order_id), "intent_id": intent.id, "status": intent.status},
            )
            return await uow.payments.of_order(order_id)
    return await _refund(record, uow, gateway)


async def refund_unwanted_payment(
    order_id: UUID, intent_id: str, uow: PaymentsUnitOfWork, gateway: PaymentGateway
) -> PaymentRecord | None:
    """A payment that succeeded for an order that will never be paid for
    (it expired or was cancelled while the customer paid) is refunded.

    An order still awaiting its payment, or confirmed, keeps it: the orders
    worker confirms it on the same event. One that expires or is cancelled
    later is refunded on that event (:func:`call_off_payment`).
    """
    status = (await uow.orders.statuses_of([order_id])).get(order_id)
    if status not in UNPAID_FOR:
        return None
    record = await uow.payments.of_order(order_id, for_update=True)
    if record is None or record.intent_id != intent_id:
        # Paid through an intent we have no record of (the webhook found its
        # order from the intent's metadata): for a person to look at.
        logger.warning(
            "payment captured on an intent not on record",
            extra={"order_id": str(order_id), "intent_id": intent_id},
        )
        return record
    if record.refund_id is not None:
        return record
    return await _refund(record, uow, gateway)


async def _refund(
    record: PaymentRecord, uow: PaymentsUnitOfWork, gateway: PaymentGateway
) -> PaymentRecord | None:
    refund = await gateway.refund(record.intent_id)
    await uow.payments.record_refund(record.order_id, refund.id)
    logger.info(
        "payment refunded",
        extra={
            "order_id": str(record.order_id),
            "intent_id": record.intent_id,
            "refund_id": refund.id,
        },
    )
    return await uow.payments.of_order(record.order_id)

"""What other contexts may read of payments: an order's payment, for its answer."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.payments.tables import payment_intents

__all__ = ["Payment", "payments_of"]


class Payment(BaseModel):
    """An order's PaymentIntent as a front end needs it to confirm the payment."""

    model_config = ConfigDict(frozen=True)

    provider: str = "stripe"
    intent_id: str
    # The PaymentIntent's status as last heard from the provider.
    status: str
    client_secret: str
    # Refunded: the order was cancelled, or ended otherwise, after the capture.
    refunded: bool = False


async def payments_of(
    connection: AsyncConnection, order_ids: Collection[UUID]
) -> dict[UUID, Payment]:
    """The PaymentIntents of these orders that have one."""
    rows = await connection.execute(
        select(
            payment_intents.c.order_id,
            payment_intents.c.intent_id,
            payment_intents.c.status,
            payment_intents.c.client_secret,
            payment_intents.c.refund_id,
        ).where(payment_intents.c.order_id.in_(list(order_ids)))
    )
    return {
        row.order_id: Payment(
            intent_id=row.intent_id,
            status=row.status,
            client_secret=row.client_secret,
            refunded=row.refund_id is not None,
        )
        for row in rows
    }

"""Payments persistence on one connection: the unit of work's transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.payments.domain import PaymentRecord
from storefront.payments.tables import payment_intents, stripe_events

__all__ = ["SqlPaymentRepository"]


class SqlPaymentRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def of_order(self, order_id: UUID, *, for_update: bool = False) -> PaymentRecord | None:
        """The order's intent; ``for_update`` locks its row, as every writer of it does."""
        return await self._one(
            select(payment_intents).where(payment_intents.c.order_id == order_id), for_update
        )

    async def of_intent(self, intent_id: str, *, for_update: bool = False) -> PaymentRecord | None:
        return await self._one(
            select(payment_intents).where(payment_intents.c.intent_id == intent_id), for_update
        )

    async def add(self, record: PaymentRecord) -> None:
        await self.connection.execute(
            insert(payment_intents).values(
                order_id=record.order_id,
                intent_id=record.intent_id,
                client_secret=record.client_secret,
                status=record.status,
                amount=record.amount,
                currency=record.currency,
                refund_id=record.refund_id,
            )
        )

    async def set_status(self, order_id: UUID, status: str) -> None:
        await self._update(order_id, status=status)

    async def record_refund(self, order_id: UUID, refund_id: str) -> None:
        """The intent was captured (``succeeded``, which a refund leaves it) and refunded."""
        await self._update(order_id, status="succeeded", refund_id=refund_id)

    async def record_stripe_event(self, event_id: str, event_type: str) -> bool:
        """Remember a webhook event; False if it was already (a duplicate)."""
        inserted = await self.connection.execute(
            upsert(stripe_events)
            .values(event_id=event_id, event_type=event_type)
            .on_conflict_do_nothing(index_elements=[stripe_events.c.event_id])
            .returning(stripe_events.c.event_id)
        )
        return inserted.first() is not None

    async def _one(self, statement: Select[Any], for_update: bool) -> PaymentRecord | None:
        if for_update:
            statement = statement.with_for_update()
        row = (await self.connection.execute(statement)).first()
        if row is None:
            return None
        return PaymentRecord(
            order_id=row.order_id,
            intent_id=row.intent_id,
            client_secret=row.client_secret,
            status=row.status,
            amount=row.amount,
            currency=row.currency,
            refund_id=row.refund_id,
        )

    async def _update(self, order_id: UUID, **values: object) -> None:
        await self.connection.execute(
            update(payment_intents)
            .where(payment_intents.c.order_id == order_id)
            .values(**values, updated_at=func.now())
        )

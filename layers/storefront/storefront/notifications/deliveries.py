"""Which events' emails were sent: one ``email_deliveries`` row per event.

Each step is a transaction of its own, committed before the handler goes on
(see storefront.notifications.handlers for why): the claim before the send,
the mark right after SES accepted the email, the release when SES certainly
sent nothing.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.database import UnitOfWork
from storefront.errors import DependencyUnavailable
from storefront.notifications.tables import email_deliveries

__all__ = ["Claim", "DeliveryInFlight", "DeliveryLedger", "SqlDeliveryLedger"]


class Claim(StrEnum):
    # No attempt before this one.
    FIRST = "first"
    # An earlier attempt claimed the event and never marked it sent: it may
    # have died after SES accepted the email, so this send may be a second.
    AGAIN = "again"
    # Sent already: nothing to do.
    SENT = "sent"


class DeliveryInFlight(DependencyUnavailable):
    """Another attempt claimed this event moments ago and may be sending it
    now: no fault of the event, which is tried again later (and not charged
    a delivery for it)."""


class DeliveryLedger(Protocol):
    async def claim(self, event_id: UUID, order_id: UUID, kind: str) -> Claim:
        """Claim the event's email; raises :class:`DeliveryInFlight` while
        another attempt's claim is still live."""
        ...

    async def release(self, event_id: UUID) -> None:
        """Forget an unsent claim: nothing reached the provider."""
        ...

    async def mark_sent(self, event_id: UUID, message_id: str) -> None: ...


class SqlDeliveryLedger:
    """The ledger in PostgreSQL, a short transaction per step.

    A claim younger than ``live_claim_seconds`` belongs to an attempt that
    may still be running (a reader that lost its partition's lease mid-send,
    say): give it the worker's idle threshold, which is above the worker
    function's timeout, so no live attempt is ever taken for a dead one.
    """

    def __init__(self, engine: AsyncEngine, *, live_claim_seconds: float) -> None:
        self._engine = engine
        self._live_claim_seconds = live_claim_seconds

    async def claim(self, event_id: UUID, order_id: UUID, kind: str) -> Claim:
        table = email_deliveries
        async with UnitOfWork(self._engine) as uow:
            inserted = await uow.connection.scalar(
                pg_insert(table)
                .values(event_id=event_id, order_id=order_id, kind=kind)
                .on_conflict_do_nothing(index_elements=[table.c.event_id])
                .returning(table.c.event_id)
            )
            if inserted is not None:
                await uow.commit()
                return Claim.FIRST
            stale_before = func.now() - timedelta(seconds=self._live_claim_seconds)
            taken_over = await uow.connection.scalar(
                update(table)
                .where(
                    table.c.event_id == event_id,
                    table.c.sent_at.is_(None),
                    table.c.claimed_at < stale_before,
                )
                .values(claimed_at=func.now())
                .returning(table.c.event_id)
            )
            if taken_over is not None:
                await uow.commit()
                return Claim.AGAIN
            sent_at = await uow.connection.scalar(
                select(table.c.sent_at).where(table.c.event_id == event_id)
            )
        if sent_at is not None:
            return Claim.SENT
        raise DeliveryInFlight(
            f"event {event_id}: another attempt claimed its email less than "
            f"{self._live_claim_seconds:g}s ago and has not marked it sent"
        )

    async def release(self, event_id: UUID) -> None:
        table = email_deliveries
        async with UnitOfWork(self._engine) as uow:
            await uow.connection.execute(
                table.delete().where(table.c.event_id == event_id, table.c.sent_at.is_(None))
            )
            await uow.commit()

    async def mark_sent(self, event_id: UUID, message_id: str) -> None:
        table = email_deliveries
        async with UnitOfWork(self._engine) as uow:
            await uow.connection.execute(
                update(table)
                .where(table.c.event_id == event_id, table.c.sent_at.is_(None))
                .values(message_id=message_id, sent_at=func.now())
            )
            await uow.commit()

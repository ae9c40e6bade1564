"""What the notifications worker does: email customers what became of their orders.

``OrderConfirmed`` sends a confirmation; ``OrderCancelled``, ``OrderExpired``
and ``OrderPaymentFailed`` a cancellation that says why. The address, lines
and total are the orders context's (``storefront.orders.order_summary``), the
product names the catalog's; an order without an address gets no email.

Once per event. An email cannot join a database transaction, so the
``email_deliveries`` row (keyed by the event id) is written around the send,
each step in a transaction of its own, committed at once:

1. claim: the row is inserted before the send; a row already marked sent
   means the email went out, and nothing is sent again;
2. send through SES;
3. mark: the row gets SES's message id and ``sent_at`` as soon as SES has
   accepted the email.

The mark is committed by itself, not with the worker's run: a run holds many
events, and when a later one fails (SES throttling that email, say) the
whole run rolls back and the events before it are applied again. Marked in
the run, every email sent earlier in it would be sent a second time;
marked at once, their redelivery finds them sent.

The window. A worker killed (its Lambda timeout, an out-of-memory, a lost
database at the wrong moment) after SES accepted an email and before the mark
committed leaves a claim without a mark, and the redelivery of the event
sends the email again: nothing on our side can tell whether the dead attempt
reached SES (SES has no idempotency key). The window is the time from SES
accepting an email to the mark's commit: its answer's way back and one short
transaction. A send whose answer never came (a read timeout) is in it too,
and keeps its claim; one that certainly failed (SES answered with an error,
or no connection was made) releases it, so its retry is no resend. A send on
a claim an earlier attempt left unmarked is counted: the metric
``EmailResent`` and a warning log line with the event's correlation id (an
upper bound: the earlier attempt may have died before SES took the email).

SES failing: throttled, unreachable or silent (storefront.notifications.mailer)
is a :class:`~storefront.errors.DependencyUnavailable`, which the consumer
does not count against the event's deliveries: an SES outage delays emails,
it does not dead-letter them. An email SES refuses (an unverified sender, a
malformed address) is an ordinary failure, retried and then dead-lettered.

A claim younger than the worker's idle threshold (``worker_claim_min_idle_ms``,
above the function's timeout) belongs to an attempt that may still be
running, such as a reader that lost its partition's lease mid-send: the event
is tried again later rather than sent alongside it.

Connections: the claim and the mark each borrow a second pooled connection
for a moment while the run holds its own, so this worker must run fewer
partitions side by side (``worker_partition_concurrency``, 2 by default) than
the engine's pool holds (3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront import catalog, orders
from storefront.adapters.database import UnitOfWork
from storefront.events.envelope import Event
from storefront.events.handlers import HandlerRegistry
from storefront.notifications import emails
from storefront.notifications.deliveries import SqlDeliveryLedger
from storefront.notifications.emails import Notice
from storefront.notifications.mailer import Mailer
from storefront.notifications.service import send_order_email
from storefront.orders.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderExpired,
    OrderPaymentFailed,
)
from storefront.resources import Resources
from storefront.settings import Settings

__all__ = ["notification_handlers"]


class _SqlOrderDetails:
    """Reads on the run's own connection, through the two contexts' facades."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def summary(self, order_id: UUID) -> orders.OrderSummary | None:
        return await orders.order_summary(self.connection, order_id)

    async def product_names(self, product_ids: Sequence[UUID]) -> dict[UUID, str]:
        if not product_ids:
            return {}
        view = catalog.products_view()
        rows = await self.connection.execute(
            select(view.c.product_id, view.c.name).where(view.c.product_id.in_(product_ids))
        )
        return {row.product_id: row.name for row in rows}


def notification_handlers(
    resources: Callable[[], Resources], mailer_for: Callable[[Settings], Mailer]
) -> HandlerRegistry:
    """The registry of the notifications group, on the container's resources
    and the mailer the composition root chooses (storefront.wiring)."""
    registry = HandlerRegistry()

    async def notify(event: Event, order_id: UUID, notice: Notice, uow: UnitOfWork) -> list[Event]:
        current = resources()
        settings = current.settings
        ledger = SqlDeliveryLedger(
            current.engine, live_claim_seconds=settings.worker_claim_min_idle_ms / 1000
        )
        await send_order_email(
            event,
            order_id,
            notice,
            orders=_SqlOrderDetails(uow.connection),
            ledger=ledger,
            mailer=mailer_for(settings),
            sender=settings.email_sender,
        )
        return []

    @registry.on(OrderConfirmed)
    async def confirmation(payload: OrderConfirmed, event: Event, uow: UnitOfWork) -> list[Event]:
        return await notify(event, payload.order_id, emails.confirmed(), uow)

    @registry.on(OrderCancelled)
    async def cancellation(payload: OrderCancelled, event: Event, uow: UnitOfWork) -> list[Event]:
        return await notify(event, payload.order_id, emails.cancelled(payload.previous_status), uow)

    @registry.on(OrderExpired)
    async def expiry(payload: OrderExpired, event: Event, uow: UnitOfWork) -> list[Event]:
        return await notify(event, payload.order_id, emails.expired(), uow)

    @registry.on(OrderPaymentFailed)
    async def payment_failure(
        payload: OrderPaymentFailed, event: Event, uow: UnitOfWork
    ) -> list[Event]:
        return await notify(event, payload.order_id, emails.payment_failed(payload.reason), uow)

    return registry

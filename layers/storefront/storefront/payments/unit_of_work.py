"""The payments unit of work: one transaction that owns ``uow.payments`` (the
orders' PaymentIntents and the webhook events applied), ``uow.orders`` (the
orders context's word on an order's status) and ``uow.outbox``.

Use cases and handlers see only :class:`PaymentsUnitOfWork`; PostgreSQL is
:class:`SqlPaymentsUnitOfWork`, and unit tests pass an in-memory fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from storefront import orders
from storefront.adapters.database import RepositoryUnitOfWork, TransactionScope
from storefront.events.outbox import Outbox, SqlOutbox
from storefront.orders import OrderStatus
from storefront.payments.domain import PaymentRecord
from storefront.payments.repository import SqlPaymentRepository

__all__ = ["Orders", "PaymentRepository", "PaymentsUnitOfWork", "SqlPaymentsUnitOfWork"]


class PaymentRepository(Protocol):
    async def of_order(
        self, order_id: UUID, *, for_update: bool = False
    ) -> PaymentRecord | None: ...

    async def of_intent(
        self, intent_id: str, *, for_update: bool = False
    ) -> PaymentRecord | None: ...

    async def add(self, record: PaymentRecord) -> None: ...

    async def set_status(self, order_id: UUID, status: str) -> None: ...

    async def record_refund(self, order_id: UUID, refund_id: str) -> None: ...

    async def record_stripe_event(self, event_id: str, event_type: str) -> bool: ...


class Orders(Protocol):
    """The orders context's word on orders: their statuses, missing ones left out."""

    async def statuses_of(self, order_ids: Sequence[UUID]) -> dict[UUID, OrderStatus]: ...


class PaymentsUnitOfWork(TransactionScope, Protocol):
    # Read-only (properties): a fake's own repository types satisfy them.
    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def orders(self) -> Orders: ...

    @property
    def outbox(self) -> Outbox: ...


class _OrderStatuses:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def statuses_of(self, order_ids: Sequence[UUID]) -> dict[UUID, OrderStatus]:
        return await orders.statuses_of(self.connection, order_ids)


class SqlPaymentsUnitOfWork(RepositoryUnitOfWork):
    payments: PaymentRepository
    orders: Orders
    outbox: Outbox

    def _attach(self, connection: AsyncConnection) -> None:
        self.payments = SqlPaymentRepository(connection)
        self.orders = _OrderStatuses(connection)
        self.outbox = SqlOutbox(connection, self.settings.event_partitions)

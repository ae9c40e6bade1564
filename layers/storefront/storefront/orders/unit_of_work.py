"""The orders unit of work: one transaction that owns the repositories a use
case needs (``uow.orders``, ``uow.prices``, ``uow.stock``, ``uow.outbox``,
``uow.idempotency``).

Use cases and handlers see only :class:`OrdersUnitOfWork`; PostgreSQL is
:class:`SqlOrdersUnitOfWork`, and unit tests pass an in-memory fake, so the
rules are tested in milliseconds (cosmicpython's ``unit_of_work.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from storefront import catalog, inventory
from storefront.adapters.database import RepositoryUnitOfWork, TransactionScope
from storefront.events.outbox import Outbox, SqlOutbox
from storefront.idempotency import Idempotency, SqlIdempotency
from storefront.orders.domain import Order, OrderQuery, OrderStatus
from storefront.orders.repository import SqlOrderRepository

__all__ = ["OrderRepository", "OrdersUnitOfWork", "Prices", "SqlOrdersUnitOfWork", "StockHolds"]


class OrderRepository(Protocol):
    async def add(self, order: Order) -> None: ...

    async def get(
        self, order_id: UUID, *, for_update: bool = False, customer_id: str | None = None
    ) -> Order | None: ...

    async def lock_statuses(self, order_ids: Sequence[UUID]) -> dict[UUID, OrderStatus]: ...

    async def page(self, query: OrderQuery) -> list[Order]: ...

    async def set_status(
        self, order_ids: Sequence[UUID], status: OrderStatus, reason: str | None = None
    ) -> None: ...

    async def lock_customer(self, customer_id: str) -> None: ...

    async def awaiting_payment_quantities(
        self, customer_id: str, product_ids: Sequence[UUID]
    ) -> dict[UUID, int]: ...

    async def lock_overdue(self, now: datetime, limit: int) -> list[UUID]: ...


class StockHolds(Protocol):
    """Inventory's word on stock: hold an order's units, or say what is short
    as (product id, requested, available)."""

    async def hold(
        self, order_id: UUID, quantities: Mapping[UUID, int]
    ) -> list[tuple[UUID, int, int]]: ...


class Prices(Protocol):
    """Today's unit price and currency of each product that exists (the catalog's)."""

    async def prices_of(self, product_ids: Sequence[UUID]) -> dict[UUID, tuple[Decimal, str]]: ...


class OrdersUnitOfWork(TransactionScope, Protocol):
    # Read-only (properties): a fake's own repository types satisfy them.
    @property
    def orders(self) -> OrderRepository: ...

    @property
    def prices(self) -> Prices: ...

    @property
    def stock(self) -> StockHolds: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def idempotency(self) -> Idempotency: ...


class _CatalogPrices:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def prices_of(self, product_ids: Sequence[UUID]) -> dict[UUID, tuple[Decimal, str]]:
        return await catalog.prices_of(self.connection, product_ids)


class _InventoryHolds:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def hold(
        self, order_id: UUID, quantities: Mapping[UUID, int]
    ) -> list[tuple[UUID, int, int]]:
        shortages = await inventory.hold_stock(self.connection, order_id, quantities)
        return [(s.product_id, s.requested, s.available) for s in shortages]


class SqlOrdersUnitOfWork(RepositoryUnitOfWork):
    orders: OrderRepository
    prices: Prices
    stock: StockHolds
    outbox: Outbox
    idempotency: Idempotency

    def _attach(self, connection: AsyncConnection) -> None:
        self.orders = SqlOrderRepository(connection)
        self.prices = _CatalogPrices(connection)
        self.stock = _InventoryHolds(connection)
        self.outbox = SqlOutbox(connection, self.settings.event_partitions)
        self.idempotency = SqlIdempotency(connection)

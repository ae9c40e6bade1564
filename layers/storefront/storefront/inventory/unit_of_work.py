"""The inventory unit of work: one transaction that owns ``uow.stock`` (levels
and reservations), ``uow.products`` (the catalog's word on which exist) and
``uow.orders`` (the orders context's word on which are still pending).

Use cases and handlers see only :class:`InventoryUnitOfWork`; PostgreSQL is
:class:`SqlInventoryUnitOfWork`, and unit tests pass an in-memory fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from storefront import catalog, orders
from storefront.adapters.database import RepositoryUnitOfWork, TransactionScope
from storefront.inventory.domain import StockLevel
from storefront.inventory.repository import SqlStockRepository

__all__ = [
    "InventoryUnitOfWork",
    "Orders",
    "Products",
    "SqlInventoryUnitOfWork",
    "StockRepository",
]


class StockRepository(Protocol):
    async def get(self, product_id: UUID) -> StockLevel: ...

    async def lock(self, product_ids: Sequence[UUID]) -> dict[UUID, StockLevel]: ...

    async def set_on_hand(self, product_id: UUID, on_hand: int) -> StockLevel: ...

    async def reserve(self, orders: dict[UUID, dict[UUID, int]]) -> None: ...

    async def release(self, order_id: UUID) -> dict[UUID, int] | None: ...


class Products(Protocol):
    async def exists(self, product_id: UUID) -> bool: ...


class Orders(Protocol):
    async def pending(self, order_ids: Sequence[UUID]) -> set[UUID]: ...


class InventoryUnitOfWork(TransactionScope, Protocol):
    # Read-only (properties): a fake's own repository types satisfy them.
    @property
    def stock(self) -> StockRepository: ...

    @property
    def products(self) -> Products: ...

    @property
    def orders(self) -> Orders: ...


class _CatalogProducts:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def exists(self, product_id: UUID) -> bool:
        return await catalog.product_exists(self.connection, product_id)


class _PendingOrders:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def pending(self, order_ids: Sequence[UUID]) -> set[UUID]:
        return await orders.pending_orders(self.connection, order_ids)


class SqlInventoryUnitOfWork(RepositoryUnitOfWork):
    stock: StockRepository
    products: Products
    orders: Orders

    def _attach(self, connection: AsyncConnection) -> None:
        self.stock = SqlStockRepository(connection)
        self.products = _CatalogProducts(connection)
        self.orders = _PendingOrders(connection)

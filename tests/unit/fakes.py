"""In-memory units of work: the use cases' and handlers' rules, tested in milliseconds.

cosmicpython's ``FakeUnitOfWork``: the same ports as the PostgreSQL units of
work (storefront.orders.unit_of_work, storefront.inventory.unit_of_work),
backed by dicts and lists. Changes are kept only when the use case commits,
as a transaction would. The carts' store and the catalog as carts read it
(storefront.carts.store, storefront.carts.products) are faked the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from storefront.carts.domain import CartFull, CartItem, ProductDetails, StoredCart
from storefront.catalog import ProductNotFound
from storefront.events.envelope import Event
from storefront.idempotency import IdempotencyKey, KeyReusedForAnotherRequest, StoredResponse
from storefront.inventory.domain import StockLevel
from storefront.orders.domain import Order, OrderQuery, OrderStatus


class FakeOrders:
    def __init__(self) -> None:
        self.rows: dict[UUID, Order] = {}

    async def add(self, order: Order) -> None:
        self.rows[order.id] = order

    async def get(
        self, order_id: UUID, *, for_update: bool = False, customer_id: str | None = None
    ) -> Order | None:
        order = self.rows.get(order_id)
        if order is None or (customer_id is not None and order.customer_id != customer_id):
            return None
        return order

    async def lock_statuses(self, order_ids: Sequence[UUID]) -> dict[UUID, OrderStatus]:
        return {
            order_id: self.rows[order_id].status for order_id in order_ids if order_id in self.rows
        }

    async def page(self, query: OrderQuery) -> list[Order]:
        found = sorted(
            (
                order
                for order in self.rows.values()
                if (query.status is None or order.status is query.status)
                and (query.customer_id is None or order.customer_id == query.customer_id)
                and (query.after is None or order.id > query.after)
            ),
            key=lambda order: order.id,
        )
        return found[: query.limit + 1]

    async def set_status(
        self, order_ids: Sequence[UUID], status: OrderStatus, reason: str | None = None
    ) -> None:
        for order_id in order_ids:
            self.rows[order_id] = self.rows[order_id].model_copy(
                update={"status": status, "reason": reason}
            )

    async def lock_customer(self, customer_id: str) -> None:
        pass  # one use case at a time: nothing runs concurrently here

    async def awaiting_payment_quantities(
        self, customer_id: str, product_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        held: dict[UUID, int] = {}
        for order in self.rows.values():
            if order.customer_id == customer_id and order.status is OrderStatus.AWAITING_PAYMENT:
                for item in order.items:
                    if item.product_id in product_ids:
                        held[item.product_id] = held.get(item.product_id, 0) + item.quantity
        return held

    async def lock_overdue(self, now: datetime, limit: int) -> list[UUID]:
        overdue = sorted(
            (
                order
                for order in self.rows.values()
                if order.status is OrderStatus.AWAITING_PAYMENT
                and order.payment_due_at is not None
                and order.payment_due_at <= now
            ),
            key=lambda order: (order.payment_due_at, order.id),
        )
        return [order.id for order in overdue[:limit]]


class FakePrices:
    def __init__(self, prices: dict[UUID, tuple[Decimal, str]] | None = None) -> None:
        self.prices = prices or {}

    async def prices_of(self, product_ids: Sequence[UUID]) -> dict[UUID, tuple[Decimal, str]]:
        return {pid: self.prices[pid] for pid in product_ids if pid in self.prices}


class FakeOutbox:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def add(self, events: Sequence[Event]) -> None:
        self.events += events


class FakeIdempotency:
    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], tuple[str, StoredResponse | None]] = {}

    async def claim(self, key: IdempotencyKey) -> StoredResponse | None:
        found = self.keys.get((key.scope, key.key))
        if found is None:
            self.keys[(key.scope, key.key)] = (key.fingerprint, None)
            return None
        fingerprint, stored = found
        if fingerprint != key.fingerprint:
            raise KeyReusedForAnotherRequest()
        return stored

    async def remember(self, key: IdempotencyKey, status: int, body: dict[str, Any]) -> None:
        self.keys[(key.scope, key.key)] = (key.fingerprint, StoredResponse(status, body))


class _FakeTransaction:
    """Keeps a copy of the repositories on entry and puts it back unless committed."""

    committed = False

    async def __aenter__(self) -> Self:
        self._saved = copy.deepcopy(self._state())
        self.committed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed:
            self._restore(self._saved)

    async def commit(self) -> None:
        self.committed = True

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


class FakeStockHolds:
    """Inventory's holds as checkout sees them, on a :class:`FakeStock`."""

    def __init__(self) -> None:
        self.stock = FakeStock()

    async def hold(
        self, order_id: UUID, quantities: Mapping[UUID, int]
    ) -> list[tuple[UUID, int, int]]:
        levels = await self.stock.lock(sorted(quantities))
        shortages = [
            (product_id, quantity, levels[product_id].available)
            for product_id, quantity in sorted(quantities.items())
            if levels[product_id].available < quantity
        ]
        if not shortages:
            await self.stock.reserve({order_id: dict(quantities)})
        return shortages


class FakeOrdersUnitOfWork(_FakeTransaction):
    def __init__(self, prices: dict[UUID, tuple[Decimal, str]] | None = None) -> None:
        self.orders = FakeOrders()
        self.prices = FakePrices(prices)
        self.stock = FakeStockHolds()
        self.outbox = FakeOutbox()
        self.idempotency = FakeIdempotency()

    def _state(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "stock": self.stock,
            "outbox": self.outbox,
            "idempotency": self.idempotency,
        }


class FakeStock:
    def __init__(self) -> None:
        self.levels: dict[UUID, StockLevel] = {}
        self.reservations: dict[UUID, dict[UUID, int] | None] = {}

    def level(self, product_id: UUID) -> StockLevel:
        return self.levels.get(product_id, StockLevel(product_id=product_id, on_hand=0, reserved=0))

    async def get(self, product_id: UUID) -> StockLevel:
        return self.level(product_id)

    async def lock(self, product_ids: Sequence[UUID]) -> dict[UUID, StockLevel]:
        return {product_id: self.level(product_id) for product_id in product_ids}

    async def set_on_hand(self, product_id: UUID, on_hand: int) -> StockLevel:
        level = self.level(product_id).model_copy(update={"on_hand": on_hand})
        self.levels[product_id] = level
        return level

    async def reserve(self, orders: dict[UUID, dict[UUID, int]]) -> None:
        for order_id, quantities in orders.items():
            self.reservations[order_id] = quantities
            self._change(quantities, +1)

    async def release(self, order_id: UUID) -> dict[UUID, int] | None:
        held = self.reservations.get(order_id)
        if held is None:
            return None
        self.reservations[order_id] = None  # released
        self._change(held, -1)
        return held

    def _change(self, quantities: dict[UUID, int], sign: int) -> None:
        for product_id, quantity in quantities.items():
            level = self.level(product_id)
            reserved = level.reserved + sign * quantity
            assert 0 <= reserved <= level.on_hand, "the database's check constraint"
            self.levels[product_id] = level.model_copy(update={"reserved": reserved})


class FakeProducts:
    def __init__(self, known: set[UUID] | None = None) -> None:
        self.known = known or set()

    async def exists(self, product_id: UUID) -> bool:
        return product_id in self.known


class FakeOrderStatuses:
    def __init__(self) -> None:
        self.cancelled: set[UUID] = set()

    async def pending(self, order_ids: Sequence[UUID]) -> set[UUID]:
        return set(order_ids) - self.cancelled


class FakeInventoryUnitOfWork(_FakeTransaction):
    def __init__(self, products: set[UUID] | None = None) -> None:
        self.stock = FakeStock()
        self.products = FakeProducts(products)
        self.orders = FakeOrderStatuses()

    def _state(self) -> dict[str, Any]:
        return {"stock": self.stock}


class FakeCartStore:
    """Carts in a dict, with the Redis store's rules: a line limit on new
    lines, and every use renewing the cart's expiry (to ``ttl_ms``)."""

    def __init__(self, ttl_ms: int = 604_800_000) -> None:
        self.carts: dict[str, dict[UUID, int]] = {}
        self.ttl_ms = ttl_ms
        self.uses = 0

    async def read(self, customer_id: str) -> StoredCart:
        return self._stored(customer_id)

    async def set_quantity(
        self, customer_id: str, product_id: UUID, quantity: int, *, max_lines: int
    ) -> StoredCart:
        cart = self.carts.setdefault(customer_id, {})
        if product_id not in cart and len(cart) >= max_lines:
            self.uses += 1
            raise CartFull(max_lines)
        cart[product_id] = quantity
        return self._stored(customer_id)

    async def remove(self, customer_id: str, product_id: UUID) -> StoredCart:
        self.carts.get(customer_id, {}).pop(product_id, None)
        return self._stored(customer_id)

    async def clear(self, customer_id: str) -> None:
        self.uses += 1
        self.carts.pop(customer_id, None)

    def _stored(self, customer_id: str) -> StoredCart:
        self.uses += 1
        cart = self.carts.get(customer_id)
        if not cart:
            self.carts.pop(customer_id, None)
            return StoredCart(items=(), expires_in_ms=None)
        items = tuple(CartItem(product_id=pid, quantity=qty) for pid, qty in cart.items())
        return StoredCart(items=items, expires_in_ms=self.ttl_ms)


class FakeCatalogProducts:
    """The catalog as a cart reads it: name, price and currency by id."""

    def __init__(self, products: dict[UUID, ProductDetails] | None = None) -> None:
        self.products = products or {}
        self.existence_checks = 0

    async def check_exists(self, product_id: UUID) -> None:
        self.existence_checks += 1
        if product_id not in self.products:
            raise ProductNotFound(product_id)

    async def details_of(self, product_ids: Sequence[UUID]) -> dict[UUID, ProductDetails]:
        return {pid: self.products[pid] for pid in product_ids if pid in self.products}

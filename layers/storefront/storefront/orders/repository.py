"""Order persistence on one connection: the unit of work's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront import payments
from storefront.orders.domain import Order, OrderItem, OrderPayment, OrderQuery, OrderStatus
from storefront.orders.tables import order_items, orders

__all__ = ["SqlOrderRepository"]


class SqlOrderRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, order: Order) -> None:
        await self.connection.execute(
            insert(orders).values(
                id=order.id,
                customer_id=order.customer_id,
                status=order.status.value,
                total=order.total,
                currency=order.currency,
                email=order.email,
                payment_due_at=order.payment_due_at,
                created_at=order.created_at,
                updated_at=order.updated_at,
            )
        )
        await self.connection.execute(
            insert(order_items),
            [{"order_id": order.id, **item.model_dump()} for item in order.items],
        )

    async def get(
        self, order_id: UUID, *, for_update: bool = False, customer_id: str | None = None
    ) -> Order | None:
        """One order; ``for_update`` locks its row, which every writer of the
        order's events does first, so its events commit in outbox id order.
        With ``customer_id``, another customer's order is None, as a missing one."""
        statement = select(orders).where(orders.c.id == order_id)
        if customer_id is not None:
            statement = statement.where(orders.c.customer_id == customer_id)
        if for_update:
            statement = statement.with_for_update()
        row = (await self.connection.execute(statement)).first()
        if row is None:
            return None
        return (await self._with_items([row._mapping]))[0]

    async def lock_statuses(self, order_ids: Sequence[UUID]) -> dict[UUID, OrderStatus]:
        """Lock orders' rows, as every writer of their events does first, in id
        order (two lockers of overlapping orders cannot deadlock); their
        statuses, missing ones left out. One statement, where :meth:`get` also
        reads the items: the saga's handlers need only the status."""
        rows = await self.connection.execute(
            select(orders.c.id, orders.c.status)
            .where(orders.c.id.in_(sorted(set(order_ids))))
            .order_by(orders.c.id)
            .with_for_update()
        )
        return {row.id: OrderStatus(row.status) for row in rows}

    async def page(self, query: OrderQuery) -> list[Order]:
        statement = select(orders).order_by(orders.c.id).limit(query.limit + 1)
        if query.after is not None:
            statement = statement.where(orders.c.id > query.after)
        if query.status is not None:
            statement = statement.where(orders.c.status == query.status.value)
        if query.customer_id is not None:
            statement = statement.where(orders.c.customer_id == query.customer_id)
        rows = [row._mapping for row in await self.connection.execute(statement)]
        return await self._with_items(rows)

    async def set_status(
        self, order_ids: Sequence[UUID], status: OrderStatus, reason: str | None = None
    ) -> None:
        """Move locked orders to ``status``, in one statement."""
        await self.connection.execute(
            update(orders)
            .where(orders.c.id.in_(list(order_ids)))
            .values(status=status.value, reason=reason, updated_at=func.now())
        )

    async def lock_customer(self, customer_id: str) -> None:
        """Serialise this customer's checkouts until the transaction ends, so
        two at once cannot both pass the per-customer caps."""
        await self.connection.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"checkout:{customer_id}", 0)))
        )

    async def awaiting_payment_quantities(
        self, customer_id: str, product_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        """Units of these products in the customer's orders awaiting payment."""
        rows = await self.connection.execute(
            select(order_items.c.product_id, func.sum(order_items.c.quantity))
            .join(orders, orders.c.id == order_items.c.order_id)
            .where(
                orders.c.customer_id == customer_id,
                orders.c.status == OrderStatus.AWAITING_PAYMENT.value,
                order_items.c.product_id.in_(list(product_ids)),
            )
            .group_by(order_items.c.product_id)
        )
        return {product_id: int(quantity) for product_id, quantity in rows}

    async def lock_overdue(self, now: datetime, limit: int) -> list[UUID]:
        """Lock up to ``limit`` orders awaiting payment past their due time.
        Rows another transaction holds (a webhook's confirmation, a concurrent
        sweep) are skipped, not waited for: the next sweep sees them again."""
        found = await self.connection.scalars(
            select(orders.c.id)
            .where(
                orders.c.status == OrderStatus.AWAITING_PAYMENT.value,
                orders.c.payment_due_at <= now,
            )
            .order_by(orders.c.payment_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(found)

    async def _with_items(self, rows: Sequence[object]) -> list[Order]:
        ids = [row["id"] for row in rows]  # type: ignore[index]
        items: dict[UUID, list[OrderItem]] = {order_id: [] for order_id in ids}
        # Only checkout's orders have a payment: no query for the others.
        checkouts = [row["id"] for row in rows if row["payment_due_at"] is not None]  # type: ignore[index]
        paid = await payments.payments_of(self.connection, checkouts) if checkouts else {}
        if ids:
            found = await self.connection.execute(
                select(order_items)
                .where(order_items.c.order_id.in_(ids))
                .order_by(order_items.c.order_id, order_items.c.product_id)
            )
            for item in found:
                items[item.order_id].append(
                    OrderItem(
                        product_id=item.product_id,
                        quantity=item.quantity,
                        unit_price=item.unit_price,
                    )
                )
        return [
            Order.model_validate(
                dict(row)  # type: ignore[call-overload]
                | {"items": items[row["id"]], "payment": _payment(paid.get(row["id"]))}  # type: ignore[index]
            )
            for row in rows
        ]


def _payment(found: payments.Payment | None) -> OrderPayment | None:
    if found is None:
        return None
    return OrderPayment.model_validate(found.model_dump())

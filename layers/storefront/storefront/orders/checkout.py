"""Checkout: a customer's cart becomes an order that waits for its payment.

One transaction writes the order (AWAITING_PAYMENT, due ``hold`` from now),
holds its stock (inventory's facade: all of it or none), writes its
``OrderAwaitingPayment`` event (the payments worker asks the provider for a
PaymentIntent) and claims the idempotency key. The cart is emptied only after
the commit: a crash in between leaves a cart the customer can still see, and
the key answers a retry with the order rather than a second one.

Caps: a customer may have at most ``max_units_per_product`` units of a product
awaiting payment at once (this checkout included), so no one customer holds a
product's whole stock. Concurrent checkouts of one customer are serialised by
a lock on the customer, so two cannot both pass the cap.

Expiry: :func:`expire_overdue` (the scheduled sweep) moves orders still
awaiting payment past their due time to EXPIRED, with ``OrderExpired``:
inventory releases the hold, payments cancels the PaymentIntent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from storefront.events.envelope import Event
from storefront.idempotency import IdempotencyKey
from storefront.ids import new_id
from storefront.observability import metrics
from storefront.orders.domain import (
    Checkout,
    EmptyCart,
    Order,
    OrderStatus,
    OutOfStock,
    OverCustomerCap,
    order_total,
)
from storefront.orders.events import OrderAwaitingPayment, OrderExpired, OrderLine
from storefront.orders.reads import orders_overdue
from storefront.orders.service import PlacedOrder, priced_items
from storefront.orders.unit_of_work import OrdersUnitOfWork, SqlOrdersUnitOfWork
from storefront.resources import Resources
from storefront.scheduled_handler import ScheduledJob

__all__ = ["CartLine", "CheckoutRules", "check_out", "checkout_sweep_job", "expire_overdue"]


@dataclass(frozen=True)
class CartLine:
    product_id: UUID
    quantity: int


@dataclass(frozen=True)
class CheckoutRules:
    hold: timedelta
    max_units_per_product: int


async def check_out(
    request: Checkout,
    cart: Sequence[CartLine],
    uow: OrdersUnitOfWork,
    *,
    customer_id: str,
    rules: CheckoutRules,
    now: datetime,
    correlation_id: str | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> PlacedOrder:
    async with uow:
        if idempotency_key is not None:
            earlier = await uow.idempotency.claim(idempotency_key)
            if earlier is not None:
                return PlacedOrder(Order.model_validate(earlier.body), replayed=True)
        if not cart:
            raise EmptyCart
        wanted = {line.product_id: line.quantity for line in cart}
        await uow.orders.lock_customer(customer_id)
        await _within_caps(uow, customer_id, wanted, rules.max_units_per_product)
        items, currency = await priced_items(uow.prices, list(wanted.items()), field="cart")
        due = now + rules.hold
        order = Order(
            id=new_id(),
            customer_id=customer_id,
            status=OrderStatus.AWAITING_PAYMENT,
            items=items,
            total=order_total(items),
            currency=currency,
            email=request.email,
            payment_due_at=due,
            created_at=now,
            updated_at=now,
        )
        await uow.orders.add(order)
        shortages = await uow.stock.hold(order.id, wanted)
        if shortages:
            raise OutOfStock(shortages)
        await uow.outbox.add(
            [
                Event.of(
                    _awaiting_payment(order, customer_id, due),
                    order.id,
                    correlation_id=correlation_id,
                )
            ]
        )
        if idempotency_key is not None:
            await uow.idempotency.remember(idempotency_key, 201, order.model_dump(mode="json"))
        await uow.commit()
    return PlacedOrder(order)


async def _within_caps(
    uow: OrdersUnitOfWork, customer_id: str, wanted: dict[UUID, int], cap: int
) -> None:
    held = await uow.orders.awaiting_payment_quantities(customer_id, sorted(wanted))
    for product_id, quantity in sorted(wanted.items()):
        if held.get(product_id, 0) + quantity > cap:
            raise OverCustomerCap(product_id, held.get(product_id, 0), quantity, cap)


def _awaiting_payment(order: Order, customer_id: str, due: datetime) -> OrderAwaitingPayment:
    return OrderAwaitingPayment(
        order_id=order.id,
        customer_id=customer_id,
        items=[OrderLine(**item.model_dump()) for item in order.items],
        total=order.total,
        currency=order.currency,
        payment_due_at=due,
    )


async def expire_overdue(uow: OrdersUnitOfWork, now: datetime, limit: int) -> int:
    """Expire up to ``limit`` orders whose payment is overdue, with their
    events, in one transaction; how many. A sweep that dies rolls back whole."""
    async with uow:
        overdue = await uow.orders.lock_overdue(now, limit)
        if overdue:
            await uow.orders.set_status(overdue, OrderStatus.EXPIRED, "not paid in time")
            await uow.outbox.add(
                [Event.of(OrderExpired(order_id=order_id), order_id) for order_id in overdue]
            )
        await uow.commit()
    return len(overdue)


# An order this far past its due time should have been expired by a sweep.
_GRACE = timedelta(minutes=2)


def checkout_sweep_job() -> ScheduledJob:
    """The scheduled job of ``functions/checkout_sweep``. Like the relay and
    the workers it runs until its time budget ends, sweeping every
    ``checkout_sweep_interval_seconds``, so a hold is released seconds after
    it is due rather than at the next minute's invocation. Overlapping
    invocations are safe: each locks the orders it expires, skipping others'."""

    async def sweep(resources: Resources, context: LambdaContext) -> dict[str, Any]:
        settings = resources.settings
        expired = 0
        interval_ms = settings.checkout_sweep_interval_seconds * 1000
        while True:
            uow = SqlOrdersUnitOfWork(resources.engine, settings)
            batch = await expire_overdue(uow, datetime.now(UTC), settings.checkout_sweep_batch)
            expired += batch
            left_ms = context.get_remaining_time_in_millis() - settings.time_budget_margin_ms
            if batch == settings.checkout_sweep_batch and left_ms > 0:
                continue  # more are due: no pause
            if left_ms < interval_ms:
                break
            await asyncio.sleep(interval_ms / 1000)
        # What is still overdue after a pass was locked by a confirmation in
        # progress, or is stuck: the template's alarm watches this (and its
        # absence, when the sweep stops running).
        async with resources.engine.connect() as connection:
            overdue = await orders_overdue(connection, datetime.now(UTC) - _GRACE)
        metrics.add_metric(name="OrdersExpired", unit=MetricUnit.Count, value=expired)
        metrics.add_metric(name="OrdersOverdue", unit=MetricUnit.Count, value=overdue)
        return {"expired": expired, "overdue": overdue}

    return sweep

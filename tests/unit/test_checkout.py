"""Checkout's rules on the fake unit of work: all stock held or none, the
per-customer cap, nothing written on a refusal, the expiry sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from storefront.ids import new_id
from storefront.inventory.domain import StockLevel
from storefront.orders.checkout import CartLine, CheckoutRules, check_out, expire_overdue
from storefront.orders.domain import Checkout, EmptyCart, OrderStatus, OutOfStock, OverCustomerCap
from tests.unit.fakes import FakeOrdersUnitOfWork

MUG, TEA = new_id(), new_id()
PRICES = {MUG: (Decimal("12.50"), "EUR"), TEA: (Decimal("4.20"), "EUR")}
RULES = CheckoutRules(hold=timedelta(minutes=15), max_units_per_product=5)
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
REQUEST = Checkout(email="alice@example.com")


def shop(mug: int = 0, tea: int = 0) -> FakeOrdersUnitOfWork:
    uow = FakeOrdersUnitOfWork(PRICES)
    for product_id, on_hand in ((MUG, mug), (TEA, tea)):
        uow.stock.stock.levels[product_id] = StockLevel(
            product_id=product_id, on_hand=on_hand, reserved=0
        )
    return uow


async def buy(uow: FakeOrdersUnitOfWork, *lines: CartLine, customer: str = "alice") -> OrderStatus:
    placed = await check_out(REQUEST, lines, uow, customer_id=customer, rules=RULES, now=NOW)
    return placed.order.status


@pytest.mark.parametrize("email", ["alice@example", "al ice@example.com", "al\x00ice@example.com"])
def test_an_address_forms_would_refuse_or_postgresql_could_not_store_is_refused(email: str) -> None:
    with pytest.raises(ValidationError):
        Checkout(email=email)


async def test_the_order_awaits_payment_with_its_stock_held_until_due() -> None:
    uow = shop(mug=5, tea=5)

    placed = await check_out(
        REQUEST,
        [CartLine(MUG, 2), CartLine(TEA, 1)],
        uow,
        customer_id="alice",
        rules=RULES,
        now=NOW,
    )

    order = placed.order
    assert (order.status, order.total, order.payment_due_at) == (
        OrderStatus.AWAITING_PAYMENT,
        Decimal("29.20"),
        NOW + RULES.hold,
    )
    assert uow.stock.stock.reservations[order.id] == {MUG: 2, TEA: 1}
    [event] = uow.outbox.events
    assert (event.event_type, event.payload["total"]) == ("OrderAwaitingPayment", "29.20")


async def test_a_shortage_writes_nothing() -> None:
    uow = shop(mug=5, tea=1)

    with pytest.raises(OutOfStock, match=f"{TEA} \\(2 wanted, 1 available\\)"):
        await buy(uow, CartLine(MUG, 2), CartLine(TEA, 2))

    assert uow.orders.rows == {}
    assert uow.outbox.events == []
    assert uow.stock.stock.reservations == {}


async def test_an_empty_cart_is_refused() -> None:
    with pytest.raises(EmptyCart):
        await buy(shop(mug=5))


async def test_the_cap_counts_what_the_customer_already_awaits() -> None:
    uow = shop(mug=50)
    assert await buy(uow, CartLine(MUG, 3)) is OrderStatus.AWAITING_PAYMENT

    with pytest.raises(OverCustomerCap, match="3 already awaiting payment"):
        await buy(uow, CartLine(MUG, 3))
    assert await buy(uow, CartLine(MUG, 2)) is OrderStatus.AWAITING_PAYMENT
    assert await buy(uow, CartLine(MUG, 5), customer="bob") is OrderStatus.AWAITING_PAYMENT


async def test_the_sweep_expires_only_what_is_overdue_up_to_its_batch() -> None:
    uow = shop(mug=50)
    for _ in range(3):
        await buy(uow, CartLine(MUG, 1), customer=str(new_id()))

    assert await expire_overdue(uow, NOW + RULES.hold - timedelta(seconds=1), 10) == 0
    assert await expire_overdue(uow, NOW + RULES.hold, 2) == 2
    assert await expire_overdue(uow, NOW + RULES.hold, 2) == 1

    assert {order.status for order in uow.orders.rows.values()} == {OrderStatus.EXPIRED}
    expired = [e for e in uow.outbox.events if e.event_type == "OrderExpired"]
    assert len(expired) == 3

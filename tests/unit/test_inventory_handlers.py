"""The inventory worker's handlers on the fake unit of work."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from storefront.events.envelope import Event
from storefront.ids import new_id
from storefront.inventory.handlers import release_stock, reserve_stock
from storefront.orders.events import OrderCancelled, OrderLine, OrderPlaced
from tests.unit.fakes import FakeInventoryUnitOfWork

MUG, TEA = new_id(), new_id()


def placed(*lines: tuple[UUID, int]) -> tuple[OrderPlaced, Event]:
    order_id = new_id()
    payload = OrderPlaced(
        order_id=order_id,
        items=[
            OrderLine(product_id=pid, quantity=qty, unit_price=Decimal(1)) for pid, qty in lines
        ],
        total=Decimal(sum(qty for _, qty in lines)),
        currency="EUR",
    )
    return payload, Event.of(payload, order_id)


async def stocked(uow: FakeInventoryUnitOfWork, **on_hand: int) -> None:
    for name, units in on_hand.items():
        await uow.stock.set_on_hand({"mug": MUG, "tea": TEA}[name], units)


async def test_a_run_reserves_in_placing_order_and_rejects_what_is_left_short() -> None:
    uow = FakeInventoryUnitOfWork()
    await stocked(uow, mug=5, tea=5)
    first, second, third = placed((MUG, 3)), placed((MUG, 3), (TEA, 1)), placed((TEA, 2))

    emitted = await reserve_stock([first, second, third], uow)

    assert [event.event_type for event in emitted] == [
        "StockReserved",
        "StockRejected",
        "StockReserved",
    ]
    # The second order takes nothing: all of it or none.
    assert (uow.stock.level(MUG).reserved, uow.stock.level(TEA).reserved) == (3, 2)
    shortage = emitted[1].payload["shortages"]
    assert shortage == [{"product_id": str(MUG), "requested": 3, "available": 2}]


async def test_an_order_no_longer_pending_reserves_nothing() -> None:
    uow = FakeInventoryUnitOfWork()
    await stocked(uow, mug=5)
    order = placed((MUG, 2))
    uow.orders.cancelled.add(order[0].order_id)

    assert await reserve_stock([order], uow) == []
    assert uow.stock.level(MUG).reserved == 0


async def test_a_cancel_gives_back_what_the_order_held_and_only_once() -> None:
    uow = FakeInventoryUnitOfWork()
    await stocked(uow, mug=5)
    order = placed((MUG, 2))
    await reserve_stock([order], uow)
    cancelled = OrderCancelled(order_id=order[0].order_id, previous_status="CONFIRMED")

    first = await release_stock(cancelled, Event.of(cancelled, cancelled.order_id), uow)
    again = await release_stock(cancelled, Event.of(cancelled, cancelled.order_id), uow)

    assert [event.event_type for event in first] == ["StockReleased"]
    assert again == []
    assert uow.stock.level(MUG).reserved == 0

"""Inventory's stock use cases on the fake unit of work."""

from __future__ import annotations

import pytest

from storefront.catalog import ProductNotFound
from storefront.ids import new_id
from storefront.inventory import service
from storefront.inventory.domain import BelowReserved, StockChange
from tests.unit.fakes import FakeInventoryUnitOfWork


async def test_stock_is_set_for_a_known_product_and_committed() -> None:
    mug = new_id()
    uow = FakeInventoryUnitOfWork(products={mug})

    level = await service.set_stock(mug, StockChange(on_hand=7), uow)

    assert (level.on_hand, level.available, uow.committed) == (7, 7, True)
    assert await service.get_stock(mug, uow) == level


async def test_stock_below_what_is_reserved_is_refused() -> None:
    mug = new_id()
    uow = FakeInventoryUnitOfWork(products={mug})
    await uow.stock.set_on_hand(mug, 5)
    await uow.stock.reserve({new_id(): {mug: 4}})

    with pytest.raises(BelowReserved):
        await service.set_stock(mug, StockChange(on_hand=3), uow)
    assert uow.stock.level(mug).on_hand == 5


async def test_an_unknown_product_has_no_stock() -> None:
    with pytest.raises(ProductNotFound):
        await service.get_stock(new_id(), FakeInventoryUnitOfWork())

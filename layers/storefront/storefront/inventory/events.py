"""Events about the stock an order holds (aggregate: the order)."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel

from storefront.events.envelope import Payload


class Shortage(BaseModel):
    product_id: UUID
    requested: int
    available: int


class StockReserved(Payload):
    event_type: ClassVar[str] = "StockReserved"
    aggregate_type: ClassVar[str] = "order"
    order_id: UUID


class StockRejected(Payload):
    event_type: ClassVar[str] = "StockRejected"
    aggregate_type: ClassVar[str] = "order"
    order_id: UUID
    shortages: list[Shortage]


class StockReleased(Payload):
    event_type: ClassVar[str] = "StockReleased"
    aggregate_type: ClassVar[str] = "order"
    order_id: UUID

"""Stock levels and the rules of reserving them."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, computed_field

from storefront.errors import Conflict


class StockChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_hand: Annotated[int, Field(ge=0, le=1_000_000_000, strict=True)]


class StockLevel(BaseModel):
    model_config = ConfigDict(frozen=True)

    product_id: UUID
    on_hand: int
    reserved: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class BelowReserved(Conflict):
    def __init__(self, product_id: UUID, on_hand: int, reserved: int) -> None:
        super().__init__(
            f"product {product_id} has {reserved} units reserved; on_hand {on_hand} is fewer"
        )

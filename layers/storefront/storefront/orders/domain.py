"""Orders: models and rules. No web, database or cache imports here."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from storefront.auth.principal import Principal
from storefront.errors import Conflict, Forbidden, InvalidInput, NotFound
from storefront.money import Money

MAX_QUANTITY = 100
MAX_ITEMS = 50


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


CANCELLABLE = frozenset({OrderStatus.PENDING, OrderStatus.CONFIRMED})


class RequestedItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: UUID
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY, strict=True)]


class PlaceOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[RequestedItem], Field(min_length=1, max_length=MAX_ITEMS)]

    @model_validator(mode="after")
    def _one_line_per_product(self) -> Self:
        seen: set[UUID] = set()
        for index, item in enumerate(self.items):
            if item.product_id in seen:
                raise InvalidInput(
                    f"items.{index}.product_id", f"product {item.product_id} is listed twice"
                )
            seen.add(item.product_id)
        return self


class OrderItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    product_id: UUID
    quantity: int
    unit_price: Money


class Order(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    # The subject of the token that placed it; never taken from a request body.
    customer_id: str | None = None
    status: OrderStatus
    items: list[OrderItem]
    total: Money
    currency: str
    reason: str | None = None
    created_at: datetime
    updated_at: datetime


class OrderQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: OrderStatus | None = None
    customer_id: str | None = None
    after: UUID | None = None
    limit: int = 20


class OrderPage(BaseModel):
    items: list[Order]
    next_cursor: str | None


def owner_scope(caller: Principal) -> str | None:
    """Whose orders the caller may see: everyone's (None) for an admin, else
    their own. Reads filter by it, so another customer's order is not found."""
    return None if caller.is_admin else caller.subject


def scoped_to(query: OrderQuery, caller: Principal) -> OrderQuery:
    owner = owner_scope(caller)
    if owner is None:
        return query
    if query.customer_id not in (None, owner):
        raise OrdersOfOthers
    return query.model_copy(update={"customer_id": owner})


# The largest amount an order's total column holds (NUMERIC(12, 2)).
MAX_TOTAL = Decimal("9999999999.99")


def order_total(items: list[OrderItem]) -> Decimal:
    """The items' total; InvalidInput when it is more than an order can hold
    (prices up to the catalog's maximum times the quantities can exceed it)."""
    total = sum((item.unit_price * item.quantity for item in items), Decimal("0.00"))
    if total > MAX_TOTAL:
        raise InvalidInput("items", f"the order's total {total} is more than {MAX_TOTAL}")
    return total


class OrderNotFound(NotFound):
    def __init__(self, order_id: UUID) -> None:
        super().__init__(f"order {order_id} does not exist")


class OrderNotCancellable(Conflict):
    def __init__(self, order_id: UUID, status: OrderStatus) -> None:
        super().__init__(f"order {order_id} is {status} and can no longer be cancelled")


class OrdersOfOthers(Forbidden):
    def __init__(self) -> None:
        super().__init__("Only administrators may list other customers' orders.")

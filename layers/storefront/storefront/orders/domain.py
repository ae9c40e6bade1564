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
    # POST /orders: placed, its stock not yet reserved by inventory's worker.
    PENDING = "PENDING"
    # POST /checkout: its stock held until payment_due_at, waiting for the payment.
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    # Not paid before payment_due_at: its hold released.
    EXPIRED = "EXPIRED"
    # The payment provider refused the payment: its hold released.
    PAYMENT_FAILED = "PAYMENT_FAILED"


CANCELLABLE = frozenset({OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT, OrderStatus.CONFIRMED})
# Orders whose stock is held or reserved.
OPEN = frozenset({OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT, OrderStatus.CONFIRMED})


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


# An address as forms check it: one @, a dot in the domain, no spaces, and no
# NUL, which PostgreSQL cannot store (storefront.text). Whether it receives
# mail is SES's to find out (a bounce), not ours.
EMAIL_PATTERN = r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"


class Checkout(BaseModel):
    """``POST /checkout``: the cart becomes an order; its emails go to ``email``."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, Field(max_length=254, pattern=EMAIL_PATTERN)]


class OrderPayment(BaseModel):
    """The order's PaymentIntent: a front end confirms it with ``client_secret``
    (Stripe.js ``confirmPayment``). Absent until the payments worker made it."""

    model_config = ConfigDict(frozen=True)

    provider: str
    intent_id: str
    status: str
    client_secret: str
    # The captured amount was given back (a cancel after the payment).
    refunded: bool


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
    # Checkout's orders: where their emails go; until when the stock is held
    # (AWAITING_PAYMENT); the payment to confirm.
    email: str | None = None
    payment_due_at: datetime | None = None
    payment: OrderPayment | None = None
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


class EmptyCart(InvalidInput):
    def __init__(self) -> None:
        super().__init__("cart", "the cart is empty; add items with PUT /cart/items/{product_id}")


class OutOfStock(Conflict):
    def __init__(self, shortages: list[tuple[UUID, int, int]]) -> None:
        listed = ", ".join(
            f"{product_id} ({requested} wanted, {available} available)"
            for product_id, requested, available in shortages
        )
        super().__init__(f"not enough stock: {listed}")


class OverCustomerCap(Conflict):
    def __init__(self, product_id: UUID, held: int, wanted: int, cap: int) -> None:
        super().__init__(
            f"product {product_id}: {wanted} wanted and {held} already awaiting payment in"
            f" your orders; at most {cap} units of one product may await payment at once"
        )


class OrderNotFound(NotFound):
    def __init__(self, order_id: UUID) -> None:
        super().__init__(f"order {order_id} does not exist")


class OrderNotCancellable(Conflict):
    def __init__(self, order_id: UUID, status: OrderStatus) -> None:
        super().__init__(f"order {order_id} is {status} and can no longer be cancelled")


class OrdersOfOthers(Forbidden):
    def __init__(self) -> None:
        super().__init__("Only administrators may list other customers' orders.")

"""Carts: models and rules. No web, Redis or database imports here.

A cart holds product ids and quantities only. Names and prices are the
catalog's, read each time the cart is shown, so a cart never shows a price
the catalog no longer asks (checkout prices the order again when it places
it). A product the catalog no longer has stays in the cart as an unavailable
line, so the customer sees what went rather than finding it silently gone;
it counts towards the line limit until they delete it, and adds nothing to
the total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from storefront.errors import DomainError, InvalidInput
from storefront.money import Money

__all__ = [
    "EMPTY",
    "MAX_AMOUNT",
    "Cart",
    "CartFull",
    "CartItem",
    "CartLimits",
    "CartLine",
    "CartUnavailable",
    "ProductDetails",
    "SetQuantity",
    "StoredCart",
    "priced_cart",
]

# The largest amount a Money answer can carry (NUMERIC(12, 2), the orders'
# total column too); a line or cart total above it is not shown as one.
MAX_AMOUNT = Decimal("9999999999.99")


class CartItem(BaseModel):
    """One line as the cart stores it: which product, how many."""

    model_config = ConfigDict(frozen=True)

    product_id: UUID
    quantity: int


@dataclass(frozen=True)
class StoredCart:
    """A customer's cart as the store holds it; ``expires_in_ms`` is None
    when there is no cart (nothing in it, so nothing to expire)."""

    items: tuple[CartItem, ...]
    expires_in_ms: int | None


EMPTY = StoredCart(items=(), expires_in_ms=None)


@dataclass(frozen=True)
class CartLimits:
    max_lines: int
    max_quantity: int

    def check_quantity(self, quantity: int) -> None:
        if quantity > self.max_quantity:
            raise InvalidInput("quantity", f"must be at most {self.max_quantity}")


class SetQuantity(BaseModel):
    """The body of ``PUT /cart/items/{product_id}``: the line's new quantity."""

    model_config = ConfigDict(extra="forbid")

    quantity: Annotated[
        int,
        Field(
            strict=True,
            ge=1,
            description="The line's quantity, replacing the one it had; at most"
            " CART_MAX_QUANTITY (100 by default). DELETE removes a line.",
            examples=[2],
        ),
    ]

    @field_validator("quantity", mode="before")
    @classmethod
    def _not_zero(cls, value: object) -> object:
        # Said here, not by the bound's generic message: a client sending 0
        # to remove a line learns which request does that.
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError("must be at least 1; DELETE /cart/items/{product_id} removes a line")
        return value


@dataclass(frozen=True)
class ProductDetails:
    """What the cart shows of a product: the catalog's, as it is now."""

    name: str
    unit_price: Decimal
    currency: str


class CartLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    product_id: UUID
    quantity: int
    # False once the catalog no longer has the product: the line has no
    # name or price, and adds nothing to the total.
    available: bool
    name: str | None
    unit_price: Money | None
    currency: str | None
    line_total: Money | None = Field(
        description="unit_price times quantity; null when unavailable, or above what an"
        " amount holds"
    )


class Cart(BaseModel):
    model_config = ConfigDict(frozen=True)

    lines: list[CartLine]
    total: Money | None = Field(
        description="The available lines' total, in currency; null when there is none, when"
        " they are priced in more than one currency, or above what an amount holds"
    )
    currency: str | None = Field(description="The one currency of the available lines")
    expires_at: datetime | None = Field(
        description="When the cart goes if it is not used again (every use renews it);"
        " null for an empty cart"
    )


def priced_cart(stored: StoredCart, details: Mapping[UUID, ProductDetails], now: datetime) -> Cart:
    """The stored lines with the catalog's names and prices, and their total."""
    lines = [
        _line(item, details.get(item.product_id))
        for item in sorted(stored.items, key=lambda item: item.product_id)
    ]
    available = [line for line in lines if line.available]
    currencies = {line.currency for line in available}
    currency = currencies.pop() if len(currencies) == 1 else None
    total = None
    if currency is not None:
        total = _amount(
            sum(
                (details[line.product_id].unit_price * line.quantity for line in available),
                Decimal("0.00"),
            )
        )
    expires_at = (
        None if stored.expires_in_ms is None else now + timedelta(milliseconds=stored.expires_in_ms)
    )
    return Cart(lines=lines, total=total, currency=currency, expires_at=expires_at)


def _line(item: CartItem, product: ProductDetails | None) -> CartLine:
    if product is None:
        return CartLine(
            product_id=item.product_id,
            quantity=item.quantity,
            available=False,
            name=None,
            unit_price=None,
            currency=None,
            line_total=None,
        )
    return CartLine(
        product_id=item.product_id,
        quantity=item.quantity,
        available=True,
        name=product.name,
        unit_price=product.unit_price,
        currency=product.currency,
        line_total=_amount(product.unit_price * item.quantity),
    )


def _amount(value: Decimal) -> Decimal | None:
    return value if value <= MAX_AMOUNT else None


class CartFull(InvalidInput):
    """Adding a product would take the cart past its line limit."""

    def __init__(self, max_lines: int) -> None:
        super().__init__(
            "product_id",
            f"the cart already has {max_lines} lines, its limit; remove one to add another",
        )


class CartUnavailable(DomainError):
    """Redis, where carts live, cannot be reached: retry shortly."""

    status = 503
    title = "Service unavailable"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("Carts are unreachable right now; retry shortly.")
        self.headers = {"Retry-After": str(retry_after_seconds)}

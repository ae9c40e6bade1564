"""Catalog models and rules. No web, database or cache imports here."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from storefront.errors import Conflict, InvalidInput, NotFound
from storefront.money import MONEY_PATTERN, MONEY_SCHEMA, Money
from storefront.text import STORABLE_TEXT

# The one grammar of money (storefront.money), in the schema and in the check
# below. Written out because pydantic's own schema for this Decimal said "a
# number or any string", and Decimal() itself accepts all of "1E+1", "1_0.50"
# and " 7.5 ".


def _decimal_string(value: object) -> object:
    """A price from JSON must be a string of the schema's grammar; a float
    cannot hold most prices exactly. (A Decimal is code's own, not input.)"""
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str) or not re.fullmatch(MONEY_PATTERN, value):
        raise ValueError(
            'must be a decimal string like "12.50": digits, at most 2 decimals,'
            " no sign, exponent, spaces or leading zeros"
        )
    return value


Price = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    Field(gt=0, max_digits=12, decimal_places=2),
    WithJsonSchema(MONEY_SCHEMA, mode="validation"),
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=STORABLE_TEXT)]
Description = Annotated[str, Field(max_length=5000, pattern=STORABLE_TEXT)]


class Category(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str
    created_at: datetime


class Product(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    sku: str
    name: str
    description: str
    price: Money
    currency: str
    category_id: UUID | None
    created_at: datetime
    updated_at: datetime


class NewCategory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name


class NewProduct(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    name: Name
    description: Description = ""
    price: Price
    currency: Currency = "EUR"
    category_id: UUID | None = None


class ProductChanges(BaseModel):
    """A partial update: only the fields present change; none may be null but category."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku | None = None
    name: Name | None = None
    description: Description | None = None
    price: Price | None = None
    currency: Currency | None = None
    category_id: UUID | None = None

    def changed_fields(self) -> dict[str, object]:
        changes = self.model_dump(exclude_unset=True)
        for field, value in changes.items():
            if value is None and field != "category_id":
                raise InvalidInput(field, "may not be null")
        if not changes:
            raise InvalidInput("body", "names no field to change")
        return changes


class ProductQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    category_id: UUID | None = None
    q: str | None = None
    after: UUID | None = None
    limit: int = 20


class ProductPage(BaseModel):
    items: list[Product]
    next_cursor: str | None


class ProductNotFound(NotFound):
    def __init__(self, product_id: UUID) -> None:
        super().__init__(f"product {product_id} does not exist")


class CategoryNotFound(NotFound):
    def __init__(self, category_id: UUID) -> None:
        super().__init__(f"category {category_id} does not exist")


class DuplicateSku(Conflict):
    def __init__(self, sku: str) -> None:
        super().__init__(f"a product with sku {sku!r} already exists")


class ProductInOrders(Conflict):
    """Orders keep their products: a product that was ever ordered stays."""

    def __init__(self, product_id: UUID) -> None:
        super().__init__(f"product {product_id} is in orders and cannot be deleted")


class DuplicateCategory(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"a category named {name!r} already exists")


class UnknownCategory(InvalidInput):
    def __init__(self, category_id: UUID) -> None:
        super().__init__("category_id", f"category {category_id} does not exist")

"""Carts without Redis or PostgreSQL: pricing, limits, the body's rules, the
use cases on fakes, and the settings held to what an order takes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from storefront.carts import service
from storefront.carts.domain import (
    MAX_AMOUNT,
    CartFull,
    CartItem,
    CartLimits,
    ProductDetails,
    SetQuantity,
    StoredCart,
    priced_cart,
)
from storefront.carts.store import cart_key
from storefront.catalog import ProductNotFound
from storefront.errors import InvalidInput
from storefront.ids import new_id
from storefront.money import MONEY_PATTERN
from storefront.orders.domain import MAX_ITEMS, MAX_QUANTITY
from storefront.settings import Settings
from storefront.web.rate_limits import RouteClass, route_class_of
from storefront_dev.openapi import document_path
from tests.unit.fakes import FakeCartStore, FakeCatalogProducts

MUG, TEA, GONE, YEN = new_id(), new_id(), new_id(), new_id()
CATALOG = {
    MUG: ProductDetails("Mug", Decimal("12.50"), "EUR"),
    TEA: ProductDetails("Tea", Decimal("4.20"), "EUR"),
    YEN: ProductDetails("Yen tea", Decimal("900"), "JPY"),
}
NOW = datetime(2025, 1, 1, tzinfo=UTC)
LIMITS = CartLimits(max_lines=2, max_quantity=5)


def stored(*lines: tuple[UUID, int], expires_in_ms: int | None = 1000) -> StoredCart:
    items = tuple(CartItem(product_id=pid, quantity=qty) for pid, qty in lines)
    return StoredCart(items=items, expires_in_ms=expires_in_ms)


def test_lines_are_priced_from_the_catalog_with_their_totals() -> None:
    cart = priced_cart(stored((TEA, 3), (MUG, 2)), CATALOG, NOW)

    body = cart.model_dump(mode="json")
    assert [line["name"] for line in body["lines"]] == ["Mug", "Tea"]  # product id order
    assert [line["line_total"] for line in body["lines"]] == ["25.00", "12.60"]
    assert (body["total"], body["currency"]) == ("37.60", "EUR")
    assert cart.expires_at == NOW + timedelta(seconds=1)


def test_a_product_the_catalog_no_longer_has_is_unavailable_and_not_totalled() -> None:
    cart = priced_cart(stored((MUG, 1), (GONE, 4)), CATALOG, NOW)

    gone = next(line for line in cart.lines if line.product_id == GONE)
    assert (gone.available, gone.quantity, gone.name, gone.unit_price) == (False, 4, None, None)
    assert gone.line_total is None
    assert cart.total == Decimal("12.50")


def test_an_empty_cart_has_no_total_and_no_expiry() -> None:
    cart = priced_cart(stored(expires_in_ms=None), CATALOG, NOW)

    assert (cart.lines, cart.total, cart.currency, cart.expires_at) == ([], None, None, None)


def test_lines_in_two_currencies_have_no_one_total() -> None:
    cart = priced_cart(stored((MUG, 1), (YEN, 1)), CATALOG, NOW)

    assert (cart.total, cart.currency) == (None, None)
    assert {line.currency for line in cart.lines} == {"EUR", "JPY"}


def test_an_amount_above_what_money_holds_is_not_shown_as_one() -> None:
    dear = {MUG: ProductDetails("Mug", MAX_AMOUNT, "EUR")}

    cart = priced_cart(stored((MUG, 2)), dear, NOW)

    assert (cart.lines[0].line_total, cart.total, cart.currency) == (None, None, "EUR")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"quantity": 0}, "DELETE /cart/items/{product_id} removes a line"),
        ({"quantity": -1}, "must be at least 1"),
        ({"quantity": "2"}, "valid integer"),
        ({"quantity": 2.0}, "valid integer"),
        ({"quantity": True}, "valid integer"),
        ({}, "Field required"),
    ],
)
def test_a_quantity_must_be_a_positive_integer(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError) as refused:
        SetQuantity.model_validate(body)

    (error,) = refused.value.errors()
    assert error["loc"] == ("quantity",)
    assert reason in error["msg"]


def test_a_body_with_other_fields_is_refused() -> None:
    with pytest.raises(ValidationError):
        SetQuantity.model_validate({"quantity": 1, "price": "0.01"})


async def test_setting_a_quantity_replaces_it_and_answers_the_priced_cart() -> None:
    store, catalog = FakeCartStore(), FakeCatalogProducts(CATALOG)

    await service.set_item_quantity("alice", MUG, 2, store, catalog, LIMITS)
    cart = await service.set_item_quantity("alice", MUG, 5, store, catalog, LIMITS)

    assert [(line.product_id, line.quantity) for line in cart.lines] == [(MUG, 5)]
    assert cart.total == Decimal("62.50")
    assert cart.expires_at is not None


async def test_a_quantity_over_the_limit_names_the_field_and_asks_nothing() -> None:
    store, catalog = FakeCartStore(), FakeCatalogProducts(CATALOG)

    with pytest.raises(InvalidInput) as refused:
        await service.set_item_quantity("alice", MUG, 6, store, catalog, LIMITS)

    assert (refused.value.field, refused.value.reason) == ("quantity", "must be at most 5")
    assert (store.uses, catalog.existence_checks) == (0, 0)


async def test_an_unknown_product_is_not_found_and_writes_nothing() -> None:
    store = FakeCartStore()

    with pytest.raises(ProductNotFound):
        await service.set_item_quantity(
            "alice", GONE, 1, store, FakeCatalogProducts(CATALOG), LIMITS
        )

    assert (store.carts, store.uses) == ({}, 0)


async def test_a_new_line_past_the_limit_is_refused_but_existing_lines_change() -> None:
    store, catalog = FakeCartStore(), FakeCatalogProducts(CATALOG)
    await service.set_item_quantity("alice", MUG, 1, store, catalog, LIMITS)
    await service.set_item_quantity("alice", TEA, 1, store, catalog, LIMITS)

    with pytest.raises(CartFull) as refused:
        await service.set_item_quantity("alice", YEN, 1, store, catalog, LIMITS)
    changed = await service.set_item_quantity("alice", TEA, 4, store, catalog, LIMITS)

    assert refused.value.field == "product_id"
    assert "2 lines" in refused.value.reason
    assert {line.product_id: line.quantity for line in changed.lines} == {MUG: 1, TEA: 4}


async def test_removing_a_line_twice_answers_the_same_cart() -> None:
    store, catalog = FakeCartStore(), FakeCatalogProducts(CATALOG)
    await service.set_item_quantity("alice", MUG, 1, store, catalog, LIMITS)
    await service.set_item_quantity("alice", TEA, 1, store, catalog, LIMITS)

    once = await service.remove_item("alice", MUG, store, catalog)
    twice = await service.remove_item("alice", MUG, store, catalog)

    assert [line.product_id for line in once.lines] == [TEA]
    assert once.lines == twice.lines


async def test_checkout_reads_the_lines_and_empties_the_cart_of_its_customer_only() -> None:
    store, catalog = FakeCartStore(), FakeCatalogProducts(CATALOG)
    await service.set_item_quantity("alice", MUG, 2, store, catalog, LIMITS)
    await service.set_item_quantity("bob", TEA, 1, store, catalog, LIMITS)

    items = await service.cart_items("alice", store)
    await service.empty_cart("alice", store)

    assert items == (CartItem(product_id=MUG, quantity=2),)
    assert await service.cart_items("alice", store) == ()
    assert await service.cart_items("bob", store) == (CartItem(product_id=TEA, quantity=1),)


def test_the_cart_limits_are_at_most_what_one_order_takes() -> None:
    """A cart at its limits can always be checked out."""
    defaults = Settings()
    assert (defaults.cart_max_lines, defaults.cart_max_quantity) == (MAX_ITEMS, MAX_QUANTITY)
    for field, ceiling in (("cart_max_lines", MAX_ITEMS), ("cart_max_quantity", MAX_QUANTITY)):
        with pytest.raises(ValidationError):
            Settings.model_validate({field: ceiling + 1})


def test_the_key_holds_the_prefix_and_a_digest_as_its_hash_tag_never_the_subject() -> None:
    settings = Settings(redis_key_prefix="sf-test:")

    key = cart_key(settings, "alice@example.com")

    assert key.startswith("sf-test:cart:{")
    assert key.endswith("}")
    assert "alice" not in key
    assert key != cart_key(settings, "bob@example.com")


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/cart", RouteClass.READ),
        ("PUT", "/cart/items/1", RouteClass.WRITE),
        ("DELETE", "/cart/items/1", RouteClass.WRITE),
        ("DELETE", "/cart", RouteClass.WRITE),
    ],
)
def test_cart_writes_count_as_writes(method: str, path: str, expected: RouteClass) -> None:
    assert route_class_of(method, path) is expected


CART_OPERATIONS = ("GET /cart", "PUT /cart/items/{product_id}", "DELETE /cart/items/{product_id}")


def test_the_document_declares_what_the_cart_routes_answer() -> None:
    document = json.loads(document_path().read_text())
    paths = document["paths"]
    operations = {
        name: paths[name.split()[1]][name.split()[0].lower()]
        for name in (*CART_OPERATIONS, "DELETE /cart")
    }
    for name, operation in operations.items():
        assert operation["security"] == [{"bearer": []}], name
        assert {"401", "422", "429", "503"} <= set(operation["responses"]), name
        assert "Retry-After" in operation["responses"]["503"]["headers"], name
    assert "404" in operations["PUT /cart/items/{product_id}"]["responses"]
    assert "204" in operations["DELETE /cart"]["responses"]
    for name in CART_OPERATIONS:
        ok = operations[name]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": "#/components/schemas/Cart"}, name
    schemas = document["components"]["schemas"]
    amounts = [
        schemas["Cart"]["properties"]["total"],
        schemas["CartLine"]["properties"]["unit_price"],
        schemas["CartLine"]["properties"]["line_total"],
    ]
    for amount in amounts:
        money, null = amount["anyOf"]
        assert (money["type"], money["pattern"], null) == (
            "string",
            MONEY_PATTERN,
            {"type": "null"},
        )

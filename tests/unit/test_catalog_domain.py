from decimal import Decimal

import pytest
from pydantic import ValidationError

from storefront.catalog.domain import NewProduct, ProductChanges
from storefront.errors import InvalidInput


def test_price_is_an_exact_decimal() -> None:
    product = NewProduct(sku="A", name="A", price="0.10")
    assert product.price == Decimal("0.10")
    assert product.model_dump(mode="json")["price"] == "0.10"


@pytest.mark.parametrize("price", [0.1, "0", "-1", "1.005", "1e3x"])
def test_prices_that_are_refused(price: object) -> None:
    with pytest.raises(ValidationError) as raised:
        NewProduct(sku="A", name="A", price=price)
    assert raised.value.errors()[0]["loc"] == ("price",)


def test_changes_keep_only_given_fields() -> None:
    changes = ProductChanges.model_validate({"name": "New", "category_id": None})
    assert changes.changed_fields() == {"name": "New", "category_id": None}


@pytest.mark.parametrize(("body", "field"), [({}, "body"), ({"price": None}, "price")])
def test_changes_that_are_refused(body: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        ProductChanges.model_validate(body).changed_fields()
    assert raised.value.field == field


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        NewProduct.model_validate({"sku": "A", "name": "A", "price": "1.00", "status": "x"})

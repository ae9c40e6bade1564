"""What the API functions' OpenAPI schemas declare: every refusal and problem
their routes can answer (``make chaos`` scenario 4 holds the routes to it)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from storefront import wiring
from storefront.catalog.domain import NewProduct
from storefront.resources import Resources
from storefront.web.problems import PROBLEM_JSON, PROBLEM_SCHEMA

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Where API Gateway may answer instead, with its own {"message": ...}.
EITHER_REF = {"$ref": "#/components/schemas/ProblemOrGatewayError"}
GATEWAY_STATUSES = {"413", "429", "500", "503"}

APPS = [wiring.catalog_app, wiring.orders_app, wiring.reports_app]


def operations(create_app: Callable[..., FastAPI]) -> dict[str, dict[str, Any]]:
    schema = create_app(lambda: None).openapi()
    return {
        f"{method.upper()} {path}": operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }


def responses(create_app: Callable[..., FastAPI], operation: str) -> set[str]:
    return set(operations(create_app)[operation]["responses"])


def test_routes_that_need_a_token_declare_401_and_admin_routes_403() -> None:
    assert {"401", "403"} <= responses(wiring.catalog_app, "POST /products")
    assert {"401", "403"} <= responses(wiring.orders_app, "GET /admin/events")
    assert {"401", "403"} <= responses(wiring.orders_app, "PUT /products/{product_id}/stock")
    assert "401" in responses(wiring.orders_app, "POST /orders")
    assert "403" not in responses(wiring.orders_app, "POST /orders")
    for operation in operations(wiring.reports_app):
        assert {"401", "403"} <= responses(wiring.reports_app, operation)


def test_a_bad_token_is_declared_even_where_none_is_needed() -> None:
    # The rate limiter verifies any token it is sent.
    assert "401" in responses(wiring.catalog_app, "GET /products")
    assert "403" not in responses(wiring.catalog_app, "GET /products")
    # /health is not metered and reads no token.
    assert not {"401", "403"} & responses(wiring.catalog_app, "GET /health")


@pytest.mark.parametrize("create_app", APPS)
def test_every_problem_answer_declares_the_problem_shape(
    create_app: Callable[..., FastAPI],
) -> None:
    for name, operation in operations(create_app).items():
        for status, response in operation["responses"].items():
            problem = response.get("content", {}).get(PROBLEM_JSON)
            if problem is not None:
                expected = EITHER_REF if status in GATEWAY_STATUSES else PROBLEM_REF
                assert problem["schema"] == expected, f"{name} {status}"
    schemas = create_app(lambda: None).openapi()["components"]["schemas"]
    assert schemas["Problem"] == PROBLEM_SCHEMA
    assert PROBLEM_REF in schemas["ProblemOrGatewayError"]["anyOf"]


def test_a_202_without_a_body_declares_none() -> None:
    accepted = operations(wiring.catalog_app)["POST /products/{product_id}/views"]
    assert "content" not in accepted["responses"]["202"]


def test_deleting_a_product_declares_the_conflict() -> None:
    assert "409" in responses(wiring.catalog_app, "DELETE /products/{product_id}")


def test_the_price_is_declared_as_the_decimal_string_the_api_accepts() -> None:
    no_resources = cast(Callable[[], Resources], lambda: None)
    schema = wiring.catalog_app(no_resources).openapi()["components"]["schemas"]
    price = schema["NewProduct"]["properties"]["price"]
    pattern = re.compile(price["pattern"])

    assert price["type"] == "string"
    for value in ("12.50", "0.01", "0.5", "9999999999.99", "7"):
        assert pattern.match(value), value
        NewProduct(sku="A", name="A", price=value)
    for value in ("0", "0.00", "1.234", "12345678901", "-1"):
        assert not pattern.match(value), value
        with pytest.raises(ValidationError):
            NewProduct(sku="A", name="A", price=value)

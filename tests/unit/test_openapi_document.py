"""The HTTP API's one OpenAPI document: current, complete, and what a client needs."""

from __future__ import annotations

import json
from typing import Any

from storefront import wiring
from storefront_dev.openapi import document_path, main

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(document_path().read_text())
    return loaded


def operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def test_the_packaged_document_is_the_codes() -> None:
    assert main(["--check"]) == 0, "run `make openapi`"
    assert document() == wiring.api_document()


def test_every_function_is_in_one_document() -> None:
    ops = operations(document())
    for expected in ("GET /products", "POST /orders", "GET /admin/events", "POST /reports"):
        assert expected in ops
    assert document()["openapi"] == "3.1.0"


def test_every_error_answer_is_the_one_problem_component() -> None:
    doc = document()
    assert "Problem" in doc["components"]["schemas"]
    for name, operation in operations(doc).items():
        for status, response in operation["responses"].items():
            for media, content in response.get("content", {}).items():
                if media == "application/problem+json":
                    assert content["schema"] == {"$ref": "#/components/schemas/Problem"}, (
                        name,
                        status,
                    )


def test_security_says_who_may_call_what() -> None:
    ops = operations(document())
    assert document()["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert ops["POST /orders"]["security"] == [{"bearer": []}]
    assert ops["GET /products"]["security"] == [{}, {"bearer": []}]
    assert ops["DELETE /products/{product_id}"]["security"] == [{"bearer": []}]
    assert "admin role" in ops["GET /admin/events"]["description"]
    assert "admin role" not in ops["POST /orders"].get("description", "")


def test_the_headers_a_client_reads_are_declared() -> None:
    ops = operations(document())
    placed = ops["POST /orders"]["responses"]["201"]["headers"]
    assert {"Location", "Idempotent-Replayed", "X-Correlation-Id", "RateLimit-Remaining"} <= set(
        placed
    )
    assert "Retry-After" in ops["POST /orders"]["responses"]["429"]["headers"]
    assert "Location" in ops["GET /reports/{report_id}/download"]["responses"]["303"]["headers"]
    read = ops["GET /products/{product_id}"]
    assert {"ETag", "X-Cache", "Cache-Control"} <= set(read["responses"]["200"]["headers"])
    assert "304" in read["responses"]
    assert "If-None-Match" in [parameter["name"] for parameter in read["parameters"]]


def test_money_has_one_grammar_in_and_out() -> None:
    schemas = document()["components"]["schemas"]
    sent = schemas["NewProduct"]["properties"]["price"]
    answered = [
        schemas["Product"]["properties"]["price"],
        schemas["Order"]["properties"]["total"],
        schemas["OrderItem"]["properties"]["unit_price"],
    ]
    assert all(money["pattern"] == sent["pattern"] for money in answered)
    assert all(money["type"] == "string" for money in answered)

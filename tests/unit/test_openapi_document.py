"""The HTTP API's one OpenAPI document: current, complete, and what a client needs."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from storefront import wiring
from storefront.runtime import container_resources
from storefront.web.contract import LINKS, link_errors, merge
from storefront_dev.openapi import document_path, main

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
API_APPS = (wiring.catalog_app, wiring.orders_app, wiring.reports_app)


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


PROBLEM = {"$ref": "#/components/schemas/Problem"}
GATEWAY_ERROR = {"$ref": "#/components/schemas/GatewayError"}
EITHER = {"$ref": "#/components/schemas/ProblemOrGatewayError"}
# What API Gateway may answer on any route with its own {"message": ...}.
GATEWAY_STATUSES = {"413", "429", "500", "502", "503"}


def test_every_error_answer_is_the_one_problem_component() -> None:
    doc = document()
    assert "Problem" in doc["components"]["schemas"]
    for name, operation in operations(doc).items():
        for status, response in operation["responses"].items():
            for media, content in response.get("content", {}).items():
                if media == "application/problem+json":
                    expected = EITHER if status in GATEWAY_STATUSES else PROBLEM
                    assert content["schema"] == expected, (name, status)


def test_every_operation_declares_what_api_gateway_answers_itself() -> None:
    doc = document()
    schemas = doc["components"]["schemas"]
    assert schemas["GatewayError"]["required"] == ["message"]
    assert schemas["ProblemOrGatewayError"]["anyOf"] == [PROBLEM, GATEWAY_ERROR]
    for name, operation in operations(doc).items():
        for status in GATEWAY_STATUSES:
            content = operation["responses"][status]["content"]
            # A client reading only one media type still parses both bodies.
            expected = EITHER if "application/problem+json" in content else GATEWAY_ERROR
            assert content["application/json"]["schema"] == expected, (name, status)
            assert content.get("application/problem+json", {"schema": EITHER})["schema"] == EITHER
    webhook = operations(doc)["POST /payments/stripe/webhook"]["responses"]["429"]
    assert webhook["content"] == {"application/json": {"schema": GATEWAY_ERROR}}
    assert "Retry-After" not in webhook.get("headers", {}), "the gateway's 429 sends none"


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


def path_parameters(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}


def test_every_link_leads_to_an_operation_with_exactly_its_path_parameters() -> None:
    doc = document()
    ops = operations(doc)
    by_id = {operation["operationId"]: operation for operation in ops.values()}
    followed = set()
    for name, operation in ops.items():
        for status, response in operation["responses"].items():
            for link_name, link in response.get("links", {}).items():
                target = by_id.get(link["operationId"])
                assert target is not None, (name, status, link_name)
                assert set(link["parameters"]) == path_parameters(target), (name, link_name)
                schema = response["content"]["application/json"]["schema"]["$ref"]
                answered = doc["components"]["schemas"][schema.rsplit("/", 1)[1]]
                for expression in link["parameters"].values():
                    field = expression.removeprefix("$response.body#/")
                    assert field in answered["required"], (name, link_name, expression)
                followed.add((name, status, link["operationId"]))
    assert len(followed) == sum(len(targets) for targets in LINKS.values())
    created = ops["POST /products"]["responses"]["201"]["links"]
    assert by_id[created["SetStock"]["operationId"]] is ops["PUT /products/{product_id}/stock"]
    assert created["GetProduct"]["parameters"] == {"product_id": "$response.body#/id"}


def test_a_broken_link_is_found() -> None:
    doc = document()
    assert link_errors(doc) == []
    renamed = copy.deepcopy(doc)
    link = renamed["paths"]["/orders"]["post"]["responses"]["201"]["links"]["GetOrder"]
    link["operationId"] = "get_order"
    assert link_errors(renamed) == ["POST /orders 201 link GetOrder: no operation 'get_order'"]
    misnamed = copy.deepcopy(doc)
    link = misnamed["paths"]["/reports"]["post"]["responses"]["202"]["links"]["GetReport"]
    link["parameters"] = {"id": "$response.body#/id"}
    assert len(link_errors(misnamed)) == 1
    unanswered = copy.deepcopy(doc)
    link = unanswered["paths"]["/categories"]["post"]["responses"]["201"]["links"]["GetCategory"]
    link["parameters"] = {"category_id": "$response.body#/category_id"}
    assert len(link_errors(unanswered)) == 1


def test_the_document_refuses_a_link_to_no_operation() -> None:
    functions = [app(container_resources).openapi() for app in API_APPS]
    broken = LINKS | {("POST /categories", "201"): {"GetCategory": "GET /categories/{id}"}}
    with pytest.raises(ValueError, match=re.escape("leads to no GET /categories/{id}")):
        merge(functions, broken)
    with pytest.raises(ValueError, match="POST /categories 200"):
        merge(functions, {("POST /categories", "200"): {"GetCategory": "GET /categories"}})

"""The local gateway over real HTTP, with a fake function behind it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from storefront_dev.gateway import MAX_BODY_BYTES, LocalGateway
from storefront_dev.lambda_process import Invocation
from storefront_dev.routes import Router
from storefront_dev.templates import HttpRoute


class FakeFunctions:
    """Echoes the event back, or fails when the path says so."""

    def __init__(self) -> None:
        self.events: list[Mapping[str, Any]] = []

    def invoke(self, function_id: str, event: Mapping[str, Any]) -> Invocation:
        self.events.append(event)
        if event["rawPath"] == "/fail":
            return Invocation("r-1", error={"errorType": "ValueError", "errorMessage": "boom"})
        if event["rawPath"] == "/binary":
            body = base64.b64encode(b"\x00\x01").decode()
            return Invocation("r-2", {"statusCode": 200, "body": body, "isBase64Encoded": True})
        if event["rawPath"] == "/empty":
            return Invocation("r-3", {"statusCode": 204, "headers": {"x-empty": "yes"}})
        body = json.dumps({"function": function_id, "event": event})
        headers = {"content-type": "application/json"}
        return Invocation("r-4", {"statusCode": 200, "headers": headers, "body": body})


@pytest.fixture
def functions() -> FakeFunctions:
    return FakeFunctions()


@pytest.fixture
def client(functions: FakeFunctions) -> Iterator[httpx.Client]:
    router = Router(
        [
            HttpRoute("ANY", "/items/{item_id}", "Items"),
            HttpRoute("GET", "/fail", "Failing"),
            HttpRoute("GET", "/binary", "Binary"),
            HttpRoute("GET", "/empty", "Empty"),
        ]
    )
    gateway = LocalGateway(router, functions, port=0)
    gateway.start()
    try:
        with httpx.Client(base_url=gateway.url, timeout=5) as client:
            yield client
    finally:
        gateway.stop()


def test_a_request_reaches_its_function_as_a_v2_event(client: httpx.Client) -> None:
    response = client.post("/items/42?x=1", json={"a": 1}, headers={"X-Trace": "t"})
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["function"] == "Items"
    event = echoed["event"]
    assert event["routeKey"] == "ANY /items/{item_id}"
    assert event["pathParameters"] == {"item_id": "42"}
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["headers"]["x-trace"] == "t"
    assert json.loads(event["body"]) == {"a": 1}
    assert response.headers["apigw-requestid"] == event["requestContext"]["requestId"]


def test_no_route_is_a_404(client: httpx.Client, functions: FakeFunctions) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}
    assert functions.events == []


def test_any_method_is_routed_like_api_gateway(
    client: httpx.Client, functions: FakeFunctions
) -> None:
    any_route = client.request("QUERY", "/items/7")
    no_route = client.request("PROPFIND", "/fail")

    assert any_route.status_code == 200
    assert any_route.json()["event"]["requestContext"]["http"]["method"] == "QUERY"
    assert no_route.status_code == 404
    assert no_route.json() == {"message": "Not Found"}
    assert len(functions.events) == 1


def test_a_function_error_is_a_502(client: httpx.Client) -> None:
    response = client.get("/fail")
    assert response.status_code == 502
    assert response.json() == {"message": "Internal Server Error"}


def test_base64_bodies_are_decoded(client: httpx.Client) -> None:
    assert client.get("/binary").content == b"\x00\x01"


def test_no_content(client: httpx.Client) -> None:
    response = client.get("/empty")
    assert (response.status_code, response.content) == (204, b"")
    assert response.headers["x-empty"] == "yes"


def test_head_has_headers_and_no_body(client: httpx.Client) -> None:
    response = client.head("/items/1")
    assert response.status_code == 200
    assert int(response.headers["content-length"]) > 0
    assert response.content == b""


def test_chunked_request_bodies_are_read(client: httpx.Client) -> None:
    chunks = iter([b'{"chunked": ', b"true}"])
    response = client.put("/items/1", content=chunks, headers={"content-type": "application/json"})
    assert json.loads(response.json()["event"]["body"]) == {"chunked": True}


def test_oversized_bodies_are_refused(client: httpx.Client, functions: FakeFunctions) -> None:
    response = client.post("/items/1", content=b"x" * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert functions.events == []

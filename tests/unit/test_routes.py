"""Route selection and payload format 2.0 as API Gateway's HTTP API does them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from storefront_dev.routes import (
    GatewayRequest,
    RouteMatch,
    Router,
    build_event,
    gateway_error,
    response_from_result,
)
from storefront_dev.templates import DEFAULT_ROUTE, HttpRoute

ROUTER = Router(
    [
        HttpRoute("GET", "/products", "List"),
        HttpRoute("GET", "/products/{product_id}", "Get"),
        HttpRoute("GET", "/products/featured", "Featured"),
        HttpRoute("ANY", "/products/{product_id}", "AnyProduct"),
        HttpRoute("GET", "/files/{proxy+}", "Files"),
        HttpRoute("GET", "/files/{folder}/{name}", "TwoSegments"),
        HttpRoute("ANY", "/{proxy+}", "CatchAll"),
        HttpRoute("GET", "/", "Root"),
    ]
)


def routed(method: str, path: str, router: Router = ROUTER) -> tuple[str, dict[str, str]] | None:
    match = router.match(method, path)
    return None if match is None else (match.route.function_id, dict(match.path_parameters))


def test_literal_path() -> None:
    assert routed("GET", "/products") == ("List", {})


def test_path_parameter() -> None:
    assert routed("GET", "/products/p-1") == ("Get", {"product_id": "p-1"})


def test_path_parameter_is_decoded() -> None:
    assert routed("GET", "/products/a%20b") == ("Get", {"product_id": "a b"})


def test_literal_segment_beats_parameter() -> None:
    assert routed("GET", "/products/featured") == ("Featured", {})


def test_own_method_beats_any() -> None:
    get = routed("GET", "/products/p-1")
    assert get is not None
    assert get[0] == "Get"
    assert routed("DELETE", "/products/p-1") == ("AnyProduct", {"product_id": "p-1"})


def test_full_match_beats_greedy() -> None:
    assert routed("GET", "/files/a/b") == ("TwoSegments", {"folder": "a", "name": "b"})


def test_greedy_takes_the_rest_of_the_path() -> None:
    assert routed("GET", "/files/a/b/c.txt") == ("Files", {"proxy": "a/b/c.txt"})
    assert routed("GET", "/files/readme") == ("Files", {"proxy": "readme"})


def test_longer_greedy_prefix_beats_shorter() -> None:
    files = routed("GET", "/files/x/y/z")
    assert files is not None
    assert files[0] == "Files"
    assert routed("POST", "/files/x/y/z") == ("CatchAll", {"proxy": "files/x/y/z"})


def test_root() -> None:
    assert routed("GET", "/") == ("Root", {})


def test_no_route() -> None:
    router = Router([HttpRoute("GET", "/products", "List")])
    assert routed("POST", "/products", router) is None
    assert routed("GET", "/products/", router) is None
    assert routed("GET", "/other", router) is None


def test_parameter_never_matches_an_empty_segment() -> None:
    router = Router([HttpRoute("GET", "/products/{product_id}", "Get")])
    assert routed("GET", "/products/", router) is None


def test_default_route_catches_what_nothing_else_does() -> None:
    router = Router([HttpRoute("GET", "/health", "Health"), HttpRoute("ANY", DEFAULT_ROUTE, "D")])
    assert routed("GET", "/health", router) == ("Health", {})
    assert routed("PUT", "/anything/at/all", router) == ("D", {})
    match = router.match("PUT", "/x")
    assert match is not None
    assert match.route.route_key == "$default"


def test_greedy_must_be_last() -> None:
    with pytest.raises(ValueError, match="greedy"):
        Router([HttpRoute("GET", "/{proxy+}/x", "Bad")])


# -- events ----------------------------------------------------------------------

GET_PRODUCT = RouteMatch(HttpRoute("GET", "/products/{product_id}", "Get"), {"product_id": "p 1"})


def event_for(request: GatewayRequest, match: RouteMatch = GET_PRODUCT) -> dict[str, Any]:
    return build_event(request, match, request_id="req-1", now=1_795_341_600.25)


def test_event_shape() -> None:
    request = GatewayRequest(
        "GET",
        "/products/p%201?limit=2",
        [("Host", "localhost:3000"), ("User-Agent", "curl/8.0"), ("Accept", "*/*")],
        source_ip="10.0.0.7",
    )
    event = event_for(request)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /products/{product_id}"
    assert event["rawPath"] == "/products/p%201"
    assert event["rawQueryString"] == "limit=2"
    assert event["headers"] == {"host": "localhost:3000", "user-agent": "curl/8.0", "accept": "*/*"}
    assert event["queryStringParameters"] == {"limit": "2"}
    assert event["pathParameters"] == {"product_id": "p 1"}
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    assert "cookies" not in event
    assert event["requestContext"] == {
        "accountId": "123456789012",
        "apiId": "local",
        "domainName": "localhost:3000",
        "domainPrefix": "localhost",
        "http": {
            "method": "GET",
            "path": "/products/p 1",
            "protocol": "HTTP/1.1",
            "sourceIp": "10.0.0.7",
            "userAgent": "curl/8.0",
        },
        "requestId": "req-1",
        "routeKey": "GET /products/{product_id}",
        "stage": "$default",
        "time": "22/Nov/2026:10:00:00 +0000",
        "timeEpoch": 1_795_341_600_250,
    }


def test_event_without_query_or_parameters_leaves_them_out() -> None:
    match = RouteMatch(HttpRoute("GET", "/products", "List"))
    event = event_for(GatewayRequest("GET", "/products"), match)
    assert event["rawQueryString"] == ""
    assert "queryStringParameters" not in event
    assert "pathParameters" not in event


def test_repeated_query_parameters_are_comma_joined_and_decoded() -> None:
    event = event_for(GatewayRequest("GET", "/products/p?tag=a&tag=b%20c&q=caf%C3%A9&empty="))
    assert event["rawQueryString"] == "tag=a&tag=b%20c&q=caf%C3%A9&empty="
    assert event["queryStringParameters"] == {"tag": "a,b c", "q": "café", "empty": ""}


def test_repeated_headers_are_lower_cased_and_comma_joined() -> None:
    headers = [("X-Forwarded-For", "1.1.1.1"), ("x-forwarded-for", "2.2.2.2"), ("Accept", "a")]
    event = event_for(GatewayRequest("GET", "/products/p", headers))
    assert event["headers"] == {"x-forwarded-for": "1.1.1.1,2.2.2.2", "accept": "a"}


def test_cookies_move_out_of_the_headers() -> None:
    headers = [("Cookie", "a=1; b=2"), ("Cookie", "c=3")]
    event = event_for(GatewayRequest("GET", "/products/p", headers))
    assert event["cookies"] == ["a=1", "b=2", "c=3"]
    assert "cookie" not in event["headers"]


def test_json_body_is_passed_as_text() -> None:
    body = json.dumps({"name": "Café"}).encode()
    headers = [("Content-Type", "application/json; charset=utf-8")]
    event = event_for(GatewayRequest("POST", "/products/p", headers, body))
    assert event["body"] == body.decode()
    assert event["isBase64Encoded"] is False


def test_binary_body_is_base64_encoded() -> None:
    body = bytes(range(256))
    headers = [("Content-Type", "application/octet-stream")]
    event = event_for(GatewayRequest("PUT", "/products/p", headers, body))
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_text_type_that_is_not_utf8_is_base64_encoded() -> None:
    headers = [("Content-Type", "text/plain")]
    event = event_for(GatewayRequest("POST", "/products/p", headers, b"\xff\xfe"))
    assert event["isBase64Encoded"] is True


# -- responses --------------------------------------------------------------------


def test_structured_response() -> None:
    response = response_from_result(
        {
            "statusCode": 201,
            "headers": {"content-type": "application/json", "location": "/products/1"},
            "multiValueHeaders": {"vary": ["accept", "origin"]},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": '{"id": "1"}',
            "isBase64Encoded": False,
        }
    )
    assert response.status == 201
    assert response.body == b'{"id": "1"}'
    assert list(response.headers) == [
        ("content-type", "application/json"),
        ("location", "/products/1"),
        ("vary", "accept"),
        ("vary", "origin"),
        ("set-cookie", "a=1; Path=/"),
        ("set-cookie", "b=2"),
    ]


def test_base64_response_body_is_decoded() -> None:
    payload = bytes(range(10))
    encoded = base64.b64encode(payload).decode()
    response = response_from_result({"statusCode": 200, "body": encoded, "isBase64Encoded": True})
    assert response.body == payload


def test_no_body_and_null_cookies() -> None:
    response = response_from_result({"statusCode": 204, "headers": {}, "cookies": None})
    assert (response.status, response.body, list(response.headers)) == (204, b"", [])


def test_function_length_headers_are_dropped() -> None:
    response = response_from_result(
        {"statusCode": 200, "headers": {"Content-Length": "999", "x-a": 1}, "body": "ok"}
    )
    assert list(response.headers) == [("x-a", "1")]


def test_result_without_status_code_is_a_200_json_body() -> None:
    response = response_from_result({"hello": "world"})
    assert response.status == 200
    assert ("content-type", "application/json") in response.headers
    assert json.loads(response.body) == {"hello": "world"}


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": "not a number"},
        {"statusCode": 700},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
    ],
)
def test_malformed_response_is_a_502(result: dict[str, object]) -> None:
    response = response_from_result(result)
    assert response.status == 502
    assert json.loads(response.body) == {"message": "Internal Server Error"}


def test_gateway_error_body_is_api_gateways() -> None:
    assert gateway_error(404, "Not Found").body == b'{"message":"Not Found"}'

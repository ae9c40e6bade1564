"""Rate limits without Redis: route classes, who the caller is, which limit applies."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from starlette.requests import Request

from storefront.settings import Settings
from storefront.web.rate_limits import (
    Decision,
    RateLimited,
    RateLimiter,
    RouteClass,
    client_ip,
    route_class_of,
)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/products", RouteClass.READ),
        ("HEAD", "/products/1", RouteClass.READ),
        ("GET", "/orders/1", RouteClass.READ),
        ("POST", "/orders", RouteClass.ORDERS),
        ("POST", "/orders/1/cancel", RouteClass.ORDERS),
        ("POST", "/products", RouteClass.WRITE),
        ("PUT", "/products/1/stock", RouteClass.WRITE),
        ("DELETE", "/admin/dead-letters", RouteClass.WRITE),
        ("POST", "/ordersx", RouteClass.WRITE),
    ],
)
def test_route_classes(method: str, path: str, expected: RouteClass) -> None:
    assert route_class_of(method, path) is expected


def request(headers: dict[str, str] | None = None, **scope: Any) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, **scope})


def test_the_client_ip_is_the_source_api_gateway_saw() -> None:
    event = {"requestContext": {"http": {"sourceIp": "198.51.100.1"}}}
    forwarded = {"X-Forwarded-For": "192.0.2.1"}

    assert client_ip(request(forwarded, client=("10.0.0.1", 1), **{"aws.event": event})) == (
        "198.51.100.1"
    )
    assert client_ip(request(forwarded, client=("10.0.0.1", 1))) == "10.0.0.1"
    assert client_ip(request(forwarded)) == "unknown"


def limiter(**limits: Any) -> RateLimiter:
    # No I/O: the client connects on first use only.
    return RateLimiter(Redis.from_url("redis://127.0.0.1:1/0"), Settings(**limits))


def test_anonymous_callers_get_the_lower_of_the_two_limits() -> None:
    limits = limiter(
        rate_limit_read="600/minute",
        rate_limit_orders="1/second",
        rate_limit_anonymous="30/minute",
    )

    assert str(limits.limit_for(RouteClass.READ, anonymous=True)) == "30 per 1 minute"
    assert str(limits.limit_for(RouteClass.READ, anonymous=False)) == "600 per 1 minute"
    assert str(limits.limit_for(RouteClass.ORDERS, anonymous=True)) == "30 per 1 minute"
    anonymous_orders = limiter(rate_limit_orders="10/hour", rate_limit_anonymous="30/minute")
    assert str(anonymous_orders.limit_for(RouteClass.ORDERS, anonymous=True)) == "10 per 1 hour"


@pytest.mark.parametrize("value", ["0/minute", "10 per minute", "10/fortnight", "ten/minute"])
def test_a_malformed_limit_is_refused_with_the_settings(value: str) -> None:
    with pytest.raises(ValidationError, match="rate_limit_write"):
        Settings(rate_limit_write=value)


def test_a_refusal_carries_retry_after_and_the_ratelimit_fields() -> None:
    refused = RateLimited(Decision(allowed=False, limit=30, remaining=0, reset_seconds=7))

    assert (refused.status, refused.title) == (429, "Too many requests")
    assert dict(refused.headers) == {
        "Retry-After": "7",
        "RateLimit-Limit": "30",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "7",
    }

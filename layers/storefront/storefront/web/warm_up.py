"""The requests an API function answers before its SnapStart snapshot.

A container's first request does work that every later one is spared:
Starlette builds the middleware stack, the router and the problem handlers
run for the first time, the first JSON is encoded, the catalog reads the API
document from the package. Under SnapStart that work can be done once per
published version, before the snapshot, instead of once per container.

Only requests that need no connection, so none is left in the snapshot:
``GET /health`` and ``GET /openapi.json``, which the catalog function answers
and the others answer with a 404 problem (warming that path instead). They
go through Mangum, as API Gateway's events do, but not through the Lambda
handler: Powertools' cold-start flag and metrics stay for the first real
invocation.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from mangum import Mangum

from storefront import snapstart

__all__ = ["WARM_UP_CORRELATION_ID", "WARM_UP_PATHS", "answer_warm_up_requests", "warm_up"]

WARM_UP_PATHS = ("/health", "/openapi.json")
# The request log lines written at publish time carry it.
WARM_UP_CORRELATION_ID = "snapstart-warm-up"


def warm_up(asgi: Mangum) -> None:
    """Have the before-snapshot hook answer the warm-up requests with ``asgi``."""
    snapstart.warm_before_snapshot(partial(answer_warm_up_requests, asgi))


def answer_warm_up_requests(asgi: Mangum) -> list[int]:
    """Each warm-up request's status, in the order of :data:`WARM_UP_PATHS`."""
    # Mangum only passes the context on, in the ASGI scope, where no route reads it.
    return [asgi(_event(path), None)["statusCode"] for path in WARM_UP_PATHS]  # type: ignore[arg-type]


def _event(path: str) -> dict[str, Any]:
    """An HTTP API (payload 2.0) GET of ``path``, as API Gateway sends it."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "application/json", "x-correlation-id": WARM_UP_CORRELATION_ID},
        "requestContext": {
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
            },
            "requestId": WARM_UP_CORRELATION_ID,
            "routeKey": "$default",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }

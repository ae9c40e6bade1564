"""Outer middleware: correlation id, request log, the last line of defence, HEAD.

Pure ASGI middlewares (no BaseHTTPMiddleware), so they add no task per request.
Errors nothing else handled become problem+json here: 503 with Retry-After when
PostgreSQL is unreachable, else 500. The stack trace goes to the log, never to
the client.
"""

from __future__ import annotations

import time
from uuid import uuid4

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storefront.adapters.database import is_unavailable
from storefront.observability import logger
from storefront.web.problems import database_unavailable, internal_error

CORRELATION_HEADER = "x-correlation-id"


def correlation_id_of(scope: Scope) -> str:
    """The caller's X-Correlation-Id, else API Gateway's request id, else a new one."""
    given = Headers(scope=scope).get(CORRELATION_HEADER)
    if given and len(given) <= 128 and given.isprintable():
        return given
    event = scope.get("aws.event") or {}
    request_id = (event.get("requestContext") or {}).get("requestId")
    return str(request_id) if request_id else str(uuid4())


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = correlation_id_of(scope)
        logger.set_correlation_id(correlation_id)
        # request.state.correlation_id: use cases stamp it on the events they write
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_correlation(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[CORRELATION_HEADER] = correlation_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_correlation)
        except Exception as error:
            if response_started:
                raise
            if is_unavailable(error):
                logger.warning("database unavailable: %s", type(error).__name__)
                response = database_unavailable()
            else:
                logger.exception("unhandled error")
                response = internal_error()
            await response(scope, receive, send_with_correlation)
        finally:
            logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )


class HeadAsGetMiddleware:
    """HEAD answered as GET without the body (RFC 9110, 9.3.2).

    FastAPI's routes take only the methods they declare, so a HEAD would be a
    405. The GET runs whole, rate limit and cache included, and its headers
    (ETag, Content-Length, Cache-Control) are the answer's.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # A copy: the request log outside still names the method the client sent.
        await self.app({**scope, "method": "GET"}, receive, send_headers_only)

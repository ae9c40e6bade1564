"""Pure ASGI middleware that hardens every answer: headers, body cap, CORS.

- :class:`SecurityHeadersMiddleware` (outermost): security headers on every
  response, errors included; a header a route set itself is left alone.
  ``Cache-Control`` stays the route's choice (the catalog's public reads);
  an answer to a request that carried credentials, where the route chose
  nothing, is private: ``no-store``, so no shared cache or browser keeps an
  order, a report's presigned URL or an admin view.
- :class:`BodySizeLimitMiddleware`: 413 problem+json for a body over the cap,
  told by its Content-Length or found while it streams in (chunked), before
  any route has read it.
- :class:`CorsAllowListMiddleware`: Starlette's CORS middleware with the
  allow-list from settings; API Gateway answers preflights itself in AWS
  (``CorsAllowOrigins``), this serves the local stack and tests the same way.

Settings come through callables: the app's resources are created on the first
request, not when the app is built.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storefront.web.problems import ProblemResponse, problem

__all__ = [
    "CORS_ALLOW_HEADERS",
    "CORS_ALLOW_METHODS",
    "CORS_EXPOSE_HEADERS",
    "SECURITY_HEADERS",
    "BodySizeLimitMiddleware",
    "CorsAllowListMiddleware",
    "SecurityHeadersMiddleware",
    "allowed_origins",
]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # HTTPS only, for two years; browsers ignore it on a plain HTTP answer.
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    # JSON only: nothing here may load, run or be framed.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}

# The same lists as the HttpApi's CorsConfiguration in template.yaml.
CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-None-Match",
    "X-Correlation-Id",
)
CORS_EXPOSE_HEADERS = (
    "ETag",
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "WWW-Authenticate",
    "X-Cache",
    "X-Correlation-Id",
)
CORS_MAX_AGE_SECONDS = 600


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        private = "authorization" in Headers(scope=scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if private:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int]) -> None:
        self.app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._max_bytes()
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        body = _LimitedBody(receive, send, limit)
        try:
            await self.app(scope, body.receive, body.send)
        except Exception:
            if not body.cut_short:
                raise
        if body.cut_short:
            await _too_large(limit)(scope, receive, send)


class _LimitedBody:
    """One request's receive and send: counts the body against the limit."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self._limit = limit
        self._received = 0
        self._overflowed = False
        self._response_started = False

    @property
    def cut_short(self) -> bool:
        """The body went over the limit before any response began: a 413 it is."""
        return self._overflowed and not self._response_started

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._limit:
                self._overflowed = True
                raise _BodyTooLarge
        return message

    async def send(self, message: Message) -> None:
        # Whatever the app made of a body cut short (FastAPI turns the
        # error into a 400) gives way to the 413 in the middleware.
        if self.cut_short:
            return
        self._response_started = self._response_started or message["type"] == "http.response.start"
        await self._send(message)


def _too_large(limit: int) -> ProblemResponse:
    return problem(413, "Content too large", f"The request body exceeds {limit} bytes.")


def allowed_origins(setting: str) -> list[str]:
    """``CORS_ALLOW_ORIGINS``, comma-separated, as a list (empty: none)."""
    return [origin.strip().rstrip("/") for origin in setting.split(",") if origin.strip()]


class CorsAllowListMiddleware:
    """CORS for the configured origins only; no CORS at all when there are none."""

    def __init__(self, app: ASGIApp, origins: Callable[[], str]) -> None:
        self.app = app
        self._origins = origins
        self._handler: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._handler is None:
            self._handler = self._build(allowed_origins(self._origins()))
        await self._handler(scope, receive, send)

    def _build(self, origins: list[str]) -> ASGIApp:
        if not origins:
            return self.app
        # No credentials: callers send bearer tokens, never cookies.
        return CORSMiddleware(
            self.app,
            allow_origins=origins,
            allow_methods=CORS_ALLOW_METHODS,
            allow_headers=CORS_ALLOW_HEADERS,
            expose_headers=CORS_EXPOSE_HEADERS,
            max_age=CORS_MAX_AGE_SECONDS,
        )

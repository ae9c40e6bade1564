"""Rate limits per caller and route class, counted in Redis.

**Who.** The subject of a valid bearer token; without one, the client IP:
API Gateway's ``requestContext.http.sourceIp`` (the peer it saw), never
``X-Forwarded-For``, which any client can write. Keys hold a digest of the
caller, so neither tokens' subjects nor IPs sit in Redis key names.

**What.** Each route class has its own budget (settings ``rate_limit_*``):
``read`` (GET, HEAD), ``orders`` (placing and cancelling orders), ``write``
(every other write). An anonymous caller is held to ``rate_limit_anonymous``
in each class, or to the class's own limit when that is lower.

**How.** The ``limits`` library's sliding-window counter on its async Redis
storage (redis-py), on the container's own client, so it shares the
container's loop and connections: one Lua script counts the hit, one reads the
window for the headers. The window's two keys share a hash tag (``limits``
wraps the key in braces), so the script also runs on Redis Cluster, through
``limits``' cluster storage when the container's client is a cluster client.

**Redis down.** Requests pass (fail open: losing the shop is worse than an
unmetered minute), each one counted by the ``RateLimitFailOpen`` metric. The
first failure opens a circuit breaker, so later requests skip Redis for the
cooldown instead of each paying a timeout.

:func:`enforce_rate_limit` depends on
:func:`~storefront.web.authentication.optional_principal`, so it always runs
after authentication, however a route declares its own: FastAPI resolves a
sub-dependency first and caches it per request, so a token is verified once.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from limits import RateLimitItem, parse
from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.storage.redis.redispy import RedispyBridge
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import RedisCluster
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storefront.adapters.circuit_breaker import CircuitBreaker
from storefront.adapters.redis import REDIS_FAILURES, RedisClient
from storefront.auth.principal import Principal
from storefront.errors import DomainError
from storefront.observability import logger, metrics
from storefront.settings import Settings
from storefront.web.authentication import optional_principal
from storefront.web.dependencies import get_resources

__all__ = [
    "Decision",
    "RateLimitHeadersMiddleware",
    "RateLimited",
    "RateLimiter",
    "RouteClass",
    "client_ip",
    "enforce_rate_limit",
    "route_class_of",
]

FAIL_OPEN_METRIC = "RateLimitFailOpen"
_STATE_KEY = "rate_limit"
# A Lambda container serves one request at a time. Where many run at once
# (tests, a plain ASGI server), this keeps a burst from taking every connection
# of the pool the cache shares: redis-py's async pool refuses a connection past
# its maximum (100) rather than waiting, and the cache would bypass.
_MAX_CONCURRENT_CALLS = 32


class RouteClass(StrEnum):
    READ = "read"
    WRITE = "write"
    ORDERS = "orders"


def route_class_of(method: str, path: str) -> RouteClass:
    if method in {"GET", "HEAD"}:
        return RouteClass.READ
    if path == "/orders" or path.startswith("/orders/"):
        return RouteClass.ORDERS
    return RouteClass.WRITE


def client_ip(request: Request) -> str:
    event = request.scope.get("aws.event") or {}
    source = ((event.get("requestContext") or {}).get("http") or {}).get("sourceIp")
    if source:
        return str(source)
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until the window has room again (at least 1).
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """The IETF draft's RateLimit fields (draft-ietf-httpapi-ratelimit-headers)."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


class RateLimited(DomainError):
    status = 429
    title = "Too many requests"

    def __init__(self, decision: Decision) -> None:
        super().__init__(
            f"Rate limit of {decision.limit} requests reached; retry in {decision.reset_seconds} s."
        )
        self.headers = {"Retry-After": str(decision.reset_seconds), **decision.headers()}


class RateLimiter:
    """Counts hits per (route class, caller) in Redis; None when it cannot tell."""

    def __init__(
        self, redis: RedisClient, settings: Settings, breaker: CircuitBreaker | None = None
    ) -> None:
        self.redis = redis
        self._window = SlidingWindowCounterRateLimiter(
            _storage_on(redis, key_prefix=f"{settings.redis_key_prefix}ratelimit")
        )
        self._calls = asyncio.Semaphore(_MAX_CONCURRENT_CALLS)
        self._limits = {
            RouteClass.READ: parse(settings.rate_limit_read),
            RouteClass.WRITE: parse(settings.rate_limit_write),
            RouteClass.ORDERS: parse(settings.rate_limit_orders),
        }
        self._anonymous = parse(settings.rate_limit_anonymous)
        self.breaker = breaker or CircuitBreaker(settings.cache_breaker_cooldown_seconds)

    def limit_for(self, route_class: RouteClass, *, anonymous: bool) -> RateLimitItem:
        limit = self._limits[route_class]
        if anonymous and _per_second(self._anonymous) < _per_second(limit):
            return self._anonymous
        return limit

    async def hit(
        self, route_class: RouteClass, caller: str, *, anonymous: bool
    ) -> Decision | None:
        if self.breaker.is_open:
            _count_fail_open()
            return None
        limit = self.limit_for(route_class, anonymous=anonymous)
        key = (route_class.value, hashlib.blake2b(caller.encode(), digest_size=16).hexdigest())
        try:
            async with self._calls:
                allowed = await self._window.hit(limit, *key)
                window = await self._window.get_window_stats(limit, *key)
        except REDIS_FAILURES as error:
            self.breaker.record_failure()
            logger.warning("redis unavailable, rate limits not enforced: %s", type(error).__name__)
            _count_fail_open()
            return None
        self.breaker.record_success()
        # limits computes the reset as a key's TTL modulo the window: a window
        # opened this very millisecond reads 0 instead of a whole window.
        reset = window.reset_time - time.time()
        reset_seconds = max(1, math.ceil(reset)) if reset > 0 else limit.get_expiry()
        return Decision(allowed, limit.amount, window.remaining, reset_seconds)


def _storage_on(redis: RedisClient, key_prefix: str) -> RedisStorage:
    """``limits``' storage on our client, not on one of its own: same loop,
    connections, retries and timeouts."""
    if isinstance(redis, RedisCluster):
        return _ClusterStorageOn(redis, key_prefix)
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        key_prefix=key_prefix,
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]
    )


class _ClusterStorageOn(RedisClusterStorage):
    """``limits``' cluster storage on a given cluster client.

    It takes no client (nor pool) as an option and would build a client of
    its own from a URI; ``configure_bridge`` is where it does, so this hands
    its redis-py bridge ours instead, before the bridge registers its scripts.
    """

    def __init__(self, client: RedisCluster, key_prefix: str) -> None:
        self._client = client
        # The URI would only say where limits' own client connects.
        super().__init__(
            "async+redis+cluster://unused:0", implementation="redispy", key_prefix=key_prefix
        )

    def configure_bridge(self) -> None:
        assert isinstance(self.bridge, RedispyBridge)
        # The very class limits would build; its own protocol for clients is
        # narrower than redis-py's annotations, hence Any.
        client: Any = self._client
        self.bridge.storage = client
        self.bridge.connection_getter = lambda _readonly: client


def _per_second(limit: RateLimitItem) -> float:
    return limit.amount / limit.get_expiry()


def _count_fail_open() -> None:
    metrics.add_metric(name=FAIL_OPEN_METRIC, unit="Count", value=1)


async def enforce_rate_limit(
    request: Request,
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> None:
    """429 once the caller's budget for this route class is spent."""
    resources = await get_resources(request)
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    # One per container; rebuilt if the resources were closed and reopened.
    if limiter is None or limiter.redis is not resources.redis:
        limiter = request.app.state.rate_limiter = RateLimiter(resources.redis, resources.settings)
    caller = f"sub:{principal.subject}" if principal else f"ip:{client_ip(request)}"
    decision = await limiter.hit(
        route_class_of(request.method, request.url.path), caller, anonymous=principal is None
    )
    if decision is None:
        return
    setattr(request.state, _STATE_KEY, decision)
    if not decision.allowed:
        raise RateLimited(decision)


class RateLimitHeadersMiddleware:
    """Puts the RateLimit fields on every answer to a metered request.

    A middleware rather than the dependency's ``Response``: FastAPI drops a
    dependency's headers when a route returns its own Response, as the cached
    catalog reads do.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_limits(message: Message) -> None:
            decision = state.get(_STATE_KEY)
            if message["type"] == "http.response.start" and isinstance(decision, Decision):
                headers = MutableHeaders(scope=message)
                for name, value in decision.headers().items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_limits)

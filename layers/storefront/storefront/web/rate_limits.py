"""Rate limits per caller and route class, counted in Redis.

**Who.** The subject of a valid bearer token; without one, the client IP:
API Gateway's ``requestContext.http.sourceIp`` (the peer it saw), never
``X-Forwarded-For``, which any client can write. Keys hold a digest of the
caller, so neither tokens' subjects nor IPs sit in Redis key names.

**What.** Each route class has its own budget (settings ``rate_limit_*``):
``read`` (GET, HEAD), ``orders`` (placing and cancelling orders), ``write``
(every other write). An anonymous caller is held to ``rate_limit_anonymous``
in each class, or to the class's own limit when that is lower.

**How.** The ``limits`` library's sliding-window counter: its limit strings
(``100/minute``), its keys and its algorithm. ``limits``' own API needs two
round trips per request, one script to count the hit and one to read the
window for the ``RateLimit-*`` headers, and every metered request wants both.
:data:`_HIT_AND_READ` is ``limits``' acquire script that also returns the
window it saw, so a request costs one round trip, on the container's own
client (same loop, connections, retries and timeouts). It keeps ``limits``'
key layout and arithmetic, so ``limits`` reads the same windows (a test holds
the two to each other). The window's two keys share a hash tag (``limits``
wraps the key in braces), so the script also runs on Redis Cluster.

**One round trip for a cache hit.** A route that reads cached values marks
itself with :func:`reads_ahead` (the cache names it will read, from its path
parameters). The limiter then reads those keys in the same round trip, and
the replies go to the cache (``Cache.read_ahead``), so a cached read costs
one round trip, limiter included. The decision still comes first: an answer
over the limit is a 429 before the route runs, and PostgreSQL is never
reached. On one Redis node, the script itself GETs them after counting the
hit (:data:`_HIT_AND_READ`, one ``EVALSHA``): a redis-py pipeline of the
script and the GETs costs about 100 µs more per request in Python than the
one command (measured, 400 against 300 µs on loopback), a tenth of a cache
hit. On Redis Cluster the keys live in other slots than the window's, which
one script may not touch, so a pipeline sends each node its own part at
once.

**Revoked tokens, in the same round trip.** The caller's revocation keys
(:func:`~storefront.web.authentication.revocation_keys`: the token's own and
its subject's, each a GET) travel in that pipeline too, so checking a token
costs no round trip of its own; the decision
(:func:`~storefront.web.authentication.settle_revocation`) comes before the
limit's and before the route runs: a revoked token is a 401 however much of
its budget is left, and never reaches PostgreSQL.

**Redis down.** Requests pass (fail open: losing the shop is worse than an
unmetered minute), each one counted by the ``RateLimitFailOpen`` metric. The
first failure opens a circuit breaker, so later requests skip Redis for the
cooldown instead of each paying a timeout. Whether a token was revoked is
then unknown: ``AUTH_REVOCATION_FAIL_CLOSED`` says which tokens are refused
(admins' by default, 503) and which pass.

:func:`enforce_rate_limit` authenticates the caller first
(:func:`~storefront.web.authentication.optional_principal`, which keeps the
answer on the request, so a token is verified once however a route declares
its own authentication). It calls it rather than declaring it a
sub-dependency: each level of FastAPI's dependency resolution costs a
metered request about 50 µs (measured on a cache hit), and every request is
metered.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from fastapi import Request
from limits import RateLimitItem, parse
from redis.asyncio import RedisCluster
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storefront.adapters.circuit_breaker import CircuitBreaker
from storefront.adapters.redis import REDIS_FAILURES, RedisClient, caller_digest
from storefront.auth.principal import Principal
from storefront.errors import DomainError
from storefront.observability import logger, metrics
from storefront.resources import Resources
from storefront.settings import Settings
from storefront.web.authentication import (
    optional_principal,
    revocation_keys,
    settle_revocation,
)
from storefront.web.dependencies import resources_of

__all__ = [
    "Decision",
    "RateLimitHeadersMiddleware",
    "RateLimited",
    "RateLimiter",
    "RouteClass",
    "client_ip",
    "count_failed_authentication",
    "enforce_rate_limit",
    "reads_ahead",
    "route_class_of",
]

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
# Cache names a route reads, from its path parameters (raises ValueError on
# parameters the route will refuse anyway).
CacheNames = Callable[[Mapping[str, str]], Sequence[str]]
_READS_AHEAD = "__storefront_reads_ahead__"

FAIL_OPEN_METRIC = "RateLimitFailOpen"
_STATE_KEY = "rate_limit"
# A Lambda container serves one request at a time. Where many run at once
# (tests, a plain ASGI server), this keeps a burst from taking every connection
# of the pool the cache shares: redis-py's async pool refuses a connection past
# its maximum (100) rather than waiting, and the cache would bypass.
_MAX_CONCURRENT_CALLS = 32

# limits' acquire_sliding_window.lua (limits 5.x), returning what its
# sliding_window.lua would read right after: allowed, then the previous and
# current windows' counts and TTLs (ms); then the values of KEYS[3..], the
# reads that ride along (none on Redis Cluster, where they go in a pipeline).
# KEYS: previous window, current window, then the reads. ARGV: limit, expiry
# (s), cost. The hit is counted first, so the reads happen whatever the
# decision (a 429 simply does not use them).
_HIT_AND_READ = """
local limit = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2]) * 1000
local amount = tonumber(ARGV[3])

local current_ttl = tonumber(redis.call('pttl', KEYS[2]))
if current_ttl > 0 and current_ttl < expiry then
    -- The current window has expired: it becomes the previous one.
    redis.call('rename', KEYS[2], KEYS[1])
    redis.call('set', KEYS[2], 0, 'PX', current_ttl + expiry)
end

local previous_count = tonumber(redis.call('get', KEYS[1])) or 0
local previous_ttl = math.max(0, tonumber(redis.call('pttl', KEYS[1])))
local current_count = tonumber(redis.call('get', KEYS[2])) or 0
current_ttl = math.max(0, tonumber(redis.call('pttl', KEYS[2])))

local weighted_count = math.floor(previous_count * previous_ttl / expiry) + current_count
local allowed = amount <= limit and weighted_count + amount <= limit
if allowed then
    if redis.call('exists', KEYS[2]) == 1 then
        current_count = redis.call('incrby', KEYS[2], amount)
    else
        redis.call('set', KEYS[2], amount, 'PX', expiry * 2)
        current_count = amount
        current_ttl = expiry * 2
    end
end
local reply = {allowed and 1 or 0, previous_count, previous_ttl, current_count, current_ttl}
for index = 3, #KEYS do
    local value = redis.pcall('get', KEYS[index])
    -- A GET that fails alone (WRONGTYPE) is not "missing": 0, which the
    -- caller drops, so the cache reads that key itself.
    if type(value) == 'table' and value.err then
        value = 0
    end
    reply[#reply + 1] = value
end
return reply
"""


class RouteClass(StrEnum):
    READ = "read"
    WRITE = "write"
    ORDERS = "orders"
    # Not a route class: the failed authentications of one client IP.
    FAILED_AUTH = "failed-auth"


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
        self.key_prefix = f"{settings.redis_key_prefix}ratelimit"
        self._hit_and_read = redis.register_script(_HIT_AND_READ)
        self._calls = asyncio.Semaphore(_MAX_CONCURRENT_CALLS)
        self._limits = {
            RouteClass.READ: parse(settings.rate_limit_read),
            RouteClass.WRITE: parse(settings.rate_limit_write),
            RouteClass.ORDERS: parse(settings.rate_limit_orders),
            RouteClass.FAILED_AUTH: parse(settings.rate_limit_failed_auth),
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
        decision, _ = await self.hit_and_get(route_class, caller, anonymous=anonymous, keys=())
        return decision

    async def hit_and_get(
        self, route_class: RouteClass, caller: str, *, anonymous: bool, keys: Sequence[str]
    ) -> tuple[Decision | None, dict[str, bytes | None]]:
        """Count a hit and GET ``keys`` in the same round trip: the decision
        (None when Redis cannot tell) and the keys' values that could be read."""
        if self.breaker.is_open:
            _count_fail_open()
            return None, {}
        limit = self.limit_for(route_class, anonymous=anonymous)
        window_keys = self.window_keys(limit, route_class.value, caller_digest(caller))
        arguments = [limit.amount, limit.get_expiry(), 1]
        try:
            async with self._calls:
                reply, values = await self._run(window_keys, arguments, keys)
        except REDIS_FAILURES as error:
            self.breaker.record_failure()
            logger.warning("redis unavailable, rate limits not enforced: %s", type(error).__name__)
            _count_fail_open()
            return None, {}
        self.breaker.record_success()
        return self._decision(limit, reply), values

    async def _run(
        self, window_keys: list[str], arguments: list[int], keys: Sequence[str]
    ) -> tuple[list[Any], dict[str, bytes | None]]:
        if not keys or not isinstance(self.redis, RedisCluster):
            reply = await self._hit_and_read(keys=[*window_keys, *keys], args=arguments)
            return reply[:5], _values_of(keys, reply[5:])
        # EVAL with the script's text (1.5 kB), not EVALSHA: a cluster
        # pipeline refuses EVALSHA, and a pipeline given the registered Script
        # would first ask SCRIPT EXISTS, a round trip of its own. Redis keeps
        # the compiled script by its digest either way.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.eval(_HIT_AND_READ, len(window_keys), *window_keys, *arguments)
            for key in keys:
                pipe.get(key)
            reply, *replies = await pipe.execute(raise_on_error=False)
        if isinstance(reply, BaseException):
            raise reply
        return reply, _values_of(keys, replies)

    def _decision(self, limit: RateLimitItem, reply: list[Any]) -> Decision:
        allowed, previous_count, previous_ttl_ms, current_count, current_ttl_ms = map(int, reply)
        remaining, reset = _window_stats(
            limit, previous_count, previous_ttl_ms / 1000, current_count, current_ttl_ms / 1000
        )
        # limits computes the reset as a key's TTL modulo the window: a window
        # opened this very millisecond reads 0 instead of a whole window.
        reset_seconds = max(1, math.ceil(reset)) if reset > 0 else limit.get_expiry()
        return Decision(bool(allowed), limit.amount, remaining, reset_seconds)

    def window_keys(self, limit: RateLimitItem, *identifiers: str) -> list[str]:
        """The previous and current windows' keys, as ``limits``' Redis storage
        names them for ``key_prefix``."""
        current = f"{self.key_prefix}:{{{limit.key_for(*identifiers)}}}"
        return [f"{current}/-1", current]


def caller_of(request: Request, principal: Principal | None) -> str:
    """Who calls: the token's subject, else the client IP."""
    return f"sub:{principal.subject}" if principal else f"ip:{client_ip(request)}"


def _window_stats(
    limit: RateLimitItem,
    previous_count: int,
    previous_expires_in: float,
    current_count: int,
    current_expires_in: float,
) -> tuple[int, float]:
    """Remaining hits and seconds to the reset, as ``limits``'
    ``SlidingWindowCounterRateLimiter.get_window_stats`` computes them."""
    expiry = limit.get_expiry()
    weighted = previous_count * previous_expires_in / expiry + current_count
    remaining = max(0, limit.amount - math.floor(weighted))
    if not (previous_count or current_count):
        return remaining, 0.0
    previous_reset_in = (
        previous_expires_in % (expiry / previous_count) if previous_count else math.inf
    )
    current_reset_in = current_expires_in % expiry if current_count else math.inf
    return remaining, min(previous_reset_in, current_reset_in)


def _values_of(keys: Sequence[str], replies: Sequence[object]) -> dict[str, bytes | None]:
    # A GET that failed alone is not "missing": left out, the cache reads it again.
    return {
        key: reply
        for key, reply in zip(keys, replies, strict=True)
        if reply is None or isinstance(reply, bytes)
    }


def _per_second(limit: RateLimitItem) -> float:
    return limit.amount / limit.get_expiry()


def _count_fail_open() -> None:
    metrics.add_metric(name=FAIL_OPEN_METRIC, unit="Count", value=1)


async def enforce_rate_limit(request: Request) -> None:
    """429 once the caller's budget for this route class is spent."""
    principal = await optional_principal(request)
    resources = resources_of(request)
    limiter = _limiter(request, resources)
    caller = caller_of(request, principal)
    cache = resources.cache
    names = {cache.key_of(name): name for name in _names_read_ahead(request)}
    revocation = await revocation_keys(request, principal)
    decision, values = await limiter.hit_and_get(
        # The scope's path: request.url would build a whole URL object per request.
        route_class_of(request.method, request.scope["path"]),
        caller,
        anonymous=principal is None,
        keys=[*names, *revocation],
    )
    cache.read_ahead({names[key]: value for key, value in values.items() if key in names})
    if principal is not None:
        # A revoked token is a 401 whatever its budget; Redis out of reach,
        # a 503 or a pass, as AUTH_REVOCATION_FAIL_CLOSED says.
        await settle_revocation(request, principal, values)
    if decision is None:
        return
    setattr(request.state, _STATE_KEY, decision)
    if not decision.allowed:
        raise RateLimited(decision)


def reads_ahead(names: CacheNames) -> Callable[[Endpoint], Endpoint]:
    """Mark a route whose cached reads travel with the limiter's round trip."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _READS_AHEAD, names)
        return endpoint

    return mark


def _names_read_ahead(request: Request) -> Sequence[str]:
    names: CacheNames | None = getattr(request.scope.get("endpoint"), _READS_AHEAD, None)
    if names is None:
        return ()
    try:
        return names(request.path_params)
    except ValueError:  # a parameter the route refuses (422): nothing to read
        return ()


async def count_failed_authentication(request: Request) -> RateLimited | None:
    """Count a 401 against the client IP; the 429 to answer instead, once its
    budget (``rate_limit_failed_auth``) is spent."""
    limiter = _limiter(request, resources_of(request))
    decision = await limiter.hit(
        RouteClass.FAILED_AUTH, f"ip:{client_ip(request)}", anonymous=False
    )
    if decision is None or decision.allowed:
        return None
    return RateLimited(decision)


def _limiter(request: Request, resources: Resources) -> RateLimiter:
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    # One per container; rebuilt if the resources were closed and reopened.
    if limiter is None or limiter.redis is not resources.redis:
        limiter = request.app.state.rate_limiter = RateLimiter(resources.redis, resources.settings)
    return limiter


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

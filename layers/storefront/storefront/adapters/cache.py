"""Cache-aside on Redis: leases for single-flight, negative caching, a breaker.

Reads: ``get_or_load(key, load)`` answers from Redis when it can. On a miss,
one caller across every container takes a short *lease* (``SET NX PX``), loads
from PostgreSQL and fills the cache; the others wait briefly for that value
instead of all querying PostgreSQL (a cold key does not stampede). Within one
process concurrent callers of a key also share one load.

The fill only happens while the filler still holds its lease (a Lua check).
``invalidate`` deletes value and lease together, so a reader that loaded the old
row before a write committed cannot put it back after the writer invalidated.
``put`` writes the committed value through and drops the lease the same way;
a fill never overwrites a value that is there (SET NX), so a reader that
loaded from a replica which has not replayed the write yet cannot replace the
writer's value with its older one. Value and lease share a hash tag, so the
script also runs on Redis Cluster.

Missing rows are cached as a marker for a short TTL. Any Redis failure opens
the circuit breaker and the caller reads PostgreSQL directly ("bypass").

*Read ahead*: a request that already talks to Redis before its use case runs
(the rate limiter) can carry the GETs of the keys it will read in the same
round trip and hand the replies over with :meth:`Cache.read_ahead`; the reads
of this request then use them instead of a GET of their own, so a cache hit
costs one round trip in all.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from enum import StrEnum
from typing import TypeVar
from uuid import uuid4

from storefront.adapters.circuit_breaker import CircuitBreaker
from storefront.adapters.redis import REDIS_FAILURES, RedisClient
from storefront.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
Loader = Callable[[], Awaitable[bytes | None]]

_MISSING = b"\x00missing"

# The replies read ahead for the current request, by name; each is used once.
# A context variable, not a field: the Cache is the container's, one request
# runs per task, and a name not read ahead is read as before.
_read_ahead: ContextVar[dict[str, bytes | None] | None] = ContextVar(
    "cache_read_ahead", default=None
)
_NOT_READ_AHEAD = object()

_FILL_IF_LEASE_HELD = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3], 'NX')
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""


class CacheOutcome(StrEnum):
    HIT = "hit"
    MISS = "miss"
    BYPASS = "bypass"


class _RedisUnavailable(Exception):
    pass


class Cache:
    def __init__(self, redis: RedisClient, settings: Settings, breaker: CircuitBreaker) -> None:
        self._redis = redis
        self._settings = settings
        self._breaker = breaker
        self._fill = redis.register_script(_FILL_IF_LEASE_HELD)
        self._inflight: dict[str, asyncio.Future[tuple[bytes | None, CacheOutcome]]] = {}

    @property
    def list_ttl_seconds(self) -> int:
        return self._settings.cache_list_ttl_seconds

    # -- keys ---------------------------------------------------------------
    def key_of(self, name: str) -> str:
        """The Redis key of a cached name, for reading it ahead."""
        return self._key(name)

    def read_ahead(self, replies: Mapping[str, bytes | None]) -> None:
        """Replies to GETs of these names' keys, made for the current request.

        Replaces whatever an earlier request of this task left unused.
        """
        _read_ahead.set(dict(replies))

    async def _get(self, name: str) -> bytes | None:
        """The raw value under a name: read ahead, else one GET."""
        ahead = _read_ahead.get()
        reply = ahead.pop(name, _NOT_READ_AHEAD) if ahead else _NOT_READ_AHEAD
        if reply is _NOT_READ_AHEAD:
            reply = await self._guarded(self._redis.get(self._key(name)))
        # The client does not decode responses: values are bytes.
        assert reply is None or isinstance(reply, bytes)
        return reply

    def _key(self, name: str) -> str:
        return f"{self._settings.redis_key_prefix}{{{name}}}"

    def _lease_key(self, name: str) -> str:
        return self._key(name) + ":lease"

    def _ttl_ms(self, seconds: int) -> int:
        jitter = 1 + random.uniform(0, self._settings.cache_ttl_jitter)
        return int(seconds * 1000 * jitter)

    # -- reads ----------------------------------------------------------------
    async def get_or_load(
        self, name: str, load: Loader, ttl_seconds: int | None = None
    ) -> tuple[bytes | None, CacheOutcome]:
        """The value under ``name`` (None: known missing) and where it came from."""
        if self._breaker.is_open:
            return await load(), CacheOutcome.BYPASS
        shared = self._inflight.get(name)
        if shared is not None:
            # Served by another request's load: for this request, a hit.
            value, outcome = await asyncio.shield(shared)
            return value, CacheOutcome.HIT if outcome is CacheOutcome.MISS else outcome
        future: asyncio.Future[tuple[bytes | None, CacheOutcome]] = (
            asyncio.get_running_loop().create_future()
        )
        self._inflight[name] = future
        try:
            result = await self._read_through(name, load, ttl_seconds)
            future.set_result(result)
            return result
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: the waiters, if any, re-raise it
            raise
        finally:
            del self._inflight[name]

    async def _read_through(
        self, name: str, load: Loader, ttl_seconds: int | None
    ) -> tuple[bytes | None, CacheOutcome]:
        try:
            cached = await self._get(name)
            if cached is not None:
                return _decode(cached), CacheOutcome.HIT
            lease = uuid4().hex
            won = await self._guarded(
                self._redis.set(
                    self._lease_key(name), lease, nx=True, px=self._settings.cache_lease_ttl_ms
                )
            )
        except _RedisUnavailable:
            return await load(), CacheOutcome.BYPASS
        if not won:
            found, waited = await self._wait_for_value(name)
            if found:
                return waited, CacheOutcome.HIT
            return await load(), CacheOutcome.MISS
        value = await load()
        ttl = ttl_seconds if value is not None else self._settings.cache_missing_ttl_seconds
        ttl = ttl or self._settings.cache_ttl_seconds
        try:
            await self._guarded(
                self._fill(
                    keys=[self._key(name), self._lease_key(name)],
                    args=[lease, _MISSING if value is None else value, self._ttl_ms(ttl)],
                )
            )
        except _RedisUnavailable:
            return value, CacheOutcome.BYPASS
        return value, CacheOutcome.MISS

    async def _wait_for_value(self, name: str) -> tuple[bool, bytes | None]:
        """Poll for the lease holder's value: (False, None) when it does not come in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.cache_lease_wait_seconds
        delay = 0.005
        while loop.time() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            try:
                cached = await self._guarded(self._redis.get(self._key(name)))
            except _RedisUnavailable:
                return False, None
            if cached is not None:
                return True, _decode(cached)
        return False, None

    async def ping(self) -> None:
        """Round trip to Redis, ignoring the breaker (for readiness checks)."""
        await self._redis.ping()

    # -- writes ---------------------------------------------------------------
    async def invalidate(self, *names: str) -> bool:
        """Drop values (and leases in flight) after a commit; False if Redis failed.

        A failed invalidation leaves the old value until its TTL runs out,
        which is why TTLs stay short.
        """
        if not names:
            return True
        try:
            await self._guarded(self._delete(names))
        except _RedisUnavailable:
            logger.warning("cache invalidation failed", extra={"keys": list(names)})
            return False
        return True

    async def put(self, name: str, value: bytes | None) -> bool:
        """Write a committed value through (None: known missing); False if
        Redis failed. For reads that may come from a replica: the next miss
        there could load what the replica had before this write, and keep it
        for the whole TTL."""
        settings = self._settings
        if value is None:
            stored, ttl = _MISSING, settings.cache_missing_ttl_seconds
        else:
            stored, ttl = value, settings.cache_ttl_seconds
        try:
            await self._guarded(self._store(name, stored, self._ttl_ms(ttl)))
        except _RedisUnavailable:
            logger.warning("cache write-through failed", extra={"key": name})
            return False
        return True

    async def _store(self, name: str, value: bytes, ttl_ms: int) -> None:
        # The value first, then the lease: a filler still holding the lease
        # in between finds the value there and leaves it (SET NX).
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._key(name), value, px=ttl_ms)
            pipe.delete(self._lease_key(name))
            await pipe.execute()

    async def _delete(self, names: tuple[str, ...]) -> None:
        # All of it guarded: a cluster client's pipeline already connects
        # (and can fail) when it opens, not only when it executes. One DEL per
        # name, as the names' values live in different slots.
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.delete(self._key(name), self._lease_key(name))
            await pipe.execute()

    async def namespace_version(self, namespace: str) -> int | None:
        """The current version of a namespace of keys; None when Redis is unusable."""
        if self._breaker.is_open:
            return None
        try:
            raw = await self._get(version_name(namespace))
        except _RedisUnavailable:
            return None
        return int(raw or 0)

    async def bump_namespace(self, namespace: str) -> bool:
        """Make every key of a namespace unreachable at once, without scanning."""
        try:
            await self._guarded(self._redis.incr(self._key(version_name(namespace))))
        except _RedisUnavailable:
            logger.warning("cache namespace bump failed", extra={"namespace": namespace})
            return False
        return True

    async def _guarded(self, call: Awaitable[T]) -> T:
        try:
            result = await call
        except REDIS_FAILURES as error:
            self._breaker.record_failure()
            logger.warning("redis unavailable, bypassing cache: %s", type(error).__name__)
            raise _RedisUnavailable from error
        self._breaker.record_success()
        return result


def version_name(namespace: str) -> str:
    """The name a namespace's version is cached under (to read it ahead)."""
    return f"{namespace}:version"


def _decode(raw: bytes | str) -> bytes | None:
    # The client does not decode responses, so values are always bytes.
    assert isinstance(raw, bytes)
    return None if raw == _MISSING else raw

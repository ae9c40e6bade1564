"""View counters in Redis: counted per view, moved out in batches by the flush.

Keys (all under the ``{views}`` hash tag, so the multi-key transactions and
scripts below also run on Redis Cluster):

* ``views:pending`` -- a hash, ``"<day>:<product id>" -> views`` not flushed yet;
* ``views:popular:<day>`` -- a sorted set per UTC day, product id by views,
  kept ``views_retention_days`` for the popularity windows;
* ``views:batch:<batch id>`` -- a pending hash moved aside by a flush, and
  ``views:batches``, the set of batch ids not yet applied and forgotten.

A view is one ``MULTI`` (one round trip): both counters move together. The
popularity read is one script (one round trip).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError

from storefront.adapters.circuit_breaker import CircuitBreaker
from storefront.adapters.redis import RedisClient
from storefront.analytics.domain import Window, window_days
from storefront.observability import logger
from storefront.settings import Settings

__all__ = [
    "ViewCounter",
    "ViewKeys",
    "batch_ids",
    "forget_batch",
    "move_pending",
    "read_batch",
    "record",
    "top",
]

# The pending hash becomes a batch and joins the set of batches in one step:
# a flush that dies right after still leaves a batch the next one finds.
_REDIS_FAILURES = (RedisError, OSError, asyncio.TimeoutError)

_MOVE_PENDING = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# The weighted union of the days' sets, its best members, and no leftover. A
# script, not a MULTI: redis-py's cluster transactions cannot queue a command
# whose keys follow a count (ZUNIONSTORE), and a script runs on one node.
_TOP = """
local union = {'ZUNIONSTORE', KEYS[1], #KEYS - 1}
for i = 2, #KEYS do union[#union + 1] = KEYS[i] end
union[#union + 1] = 'WEIGHTS'
for i = 2, #ARGV do union[#union + 1] = ARGV[i] end
redis.call(unpack(union))
local best = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
redis.call('DEL', KEYS[1])
return best
"""


class ViewKeys:
    def __init__(self, prefix: str) -> None:
        self._base = f"{prefix}{{views}}"
        self.pending = f"{self._base}:pending"
        self.batches = f"{self._base}:batches"

    def batch(self, batch_id: UUID) -> str:
        return f"{self._base}:batch:{batch_id}"

    def popular(self, day: date) -> str:
        return f"{self._base}:popular:{day.isoformat()}"

    @property
    def scratch(self) -> str:
        # One for all: a script runs alone, and deletes it before it ends.
        return f"{self._base}:scratch"


async def record(
    redis: RedisClient, keys: ViewKeys, product_id: UUID, day: date, ttl_seconds: int
) -> None:
    popular = keys.popular(day)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(keys.pending, f"{day.isoformat()}:{product_id}", 1)
        pipe.zincrby(popular, 1, str(product_id))
        pipe.expire(popular, ttl_seconds)
        await pipe.execute()


async def top(
    redis: RedisClient, keys: ViewKeys, days: Sequence[tuple[date, float]], limit: int
) -> list[tuple[UUID, float]]:
    """The ``limit`` best-scored products over ``days`` weighted; [] when none."""
    reply = await redis.eval(
        _TOP,
        len(days) + 1,
        keys.scratch,
        *(keys.popular(day) for day, _ in days),
        limit,
        *(weight for _, weight in days),
    )
    pairs = zip(reply[::2], reply[1::2], strict=True)
    return [(UUID(_text(member)), float(score)) for member, score in pairs]


async def move_pending(redis: RedisClient, keys: ViewKeys, batch_id: UUID) -> bool:
    """Move the pending counts into a new batch; False when there were none."""
    moved = await redis.eval(
        _MOVE_PENDING, 3, keys.pending, keys.batch(batch_id), keys.batches, str(batch_id)
    )
    return bool(moved)


async def batch_ids(redis: RedisClient, keys: ViewKeys) -> list[UUID]:
    """Batches moved but not yet forgotten: new ones and those a dead flush left."""
    return sorted(UUID(_text(member)) for member in await redis.smembers(keys.batches))


async def read_batch(
    redis: RedisClient, keys: ViewKeys, batch_id: UUID
) -> dict[tuple[date, UUID], int]:
    counts: dict[tuple[date, UUID], int] = {}
    raw: dict[Any, Any] = await redis.hgetall(keys.batch(batch_id))
    for field, value in raw.items():
        day, _, product_id = _text(field).partition(":")
        counts[(date.fromisoformat(day), UUID(product_id))] = int(value)
    return counts


async def forget_batch(redis: RedisClient, keys: ViewKeys, batch_id: UUID) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.batch(batch_id))
        pipe.srem(keys.batches, str(batch_id))
        await pipe.execute()


class ViewCounter:
    """The container's view counters in Redis, behind a circuit breaker: while
    Redis is down, views are dropped (and counted as dropped) without each
    paying a timeout, and popularity is read from PostgreSQL."""

    def __init__(self, redis: RedisClient, settings: Settings) -> None:
        self.redis = redis
        self.keys = ViewKeys(settings.redis_key_prefix)
        self.ttl_seconds = settings.views_retention_days * 86_400
        self.breaker = CircuitBreaker(settings.cache_breaker_cooldown_seconds)

    async def record(self, product_id: UUID, now: datetime) -> bool:
        if self.breaker.is_open:
            return False
        try:
            await record(self.redis, self.keys, product_id, now.date(), self.ttl_seconds)
        except _REDIS_FAILURES as error:
            self.breaker.record_failure()
            logger.warning("redis unavailable, view not counted: %s", type(error).__name__)
            return False
        self.breaker.record_success()
        return True

    async def top(
        self, window: Window, now: datetime, limit: int
    ) -> list[tuple[UUID, float]] | None:
        """None when Redis cannot answer."""
        if self.breaker.is_open:
            return None
        try:
            best = await top(self.redis, self.keys, window_days(window, now), limit)
        except _REDIS_FAILURES as error:
            self.breaker.record_failure()
            logger.warning(
                "redis unavailable, popularity from PostgreSQL: %s", type(error).__name__
            )
            return None
        self.breaker.record_success()
        return best


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

"""View counters in Redis: counted per view, moved out in batches by the flush.

Keys (all under the ``{views}`` hash tag, so the multi-key transactions and
scripts below also run on Redis Cluster):

* ``views:pending`` -- a hash, ``"<day>:<product id>" -> views`` not flushed yet;
* ``views:popular:<day>`` -- a sorted set per UTC day, product id by views,
  kept ``views_retention_days`` for the popularity windows;
* ``views:batch:<batch id>`` -- a pending hash moved aside by a flush, and
  ``views:batches``, the set of batch ids not yet applied and forgotten;
* ``views:seen:<caller digest>:<product id>`` -- set by a caller's counted view,
  for ``views_dedupe_seconds``: further views of that product by that caller in
  the window add nothing.

A view is one script (one round trip): the seen key is set only if absent, and
only then do both counters move. So a caller counts once per product per
window, and a view the client retries (its reply lost to a timeout after Redis
ran it) is not counted twice. The popularity read is one script too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError

from storefront.adapters.circuit_breaker import CircuitBreaker
from storefront.adapters.redis import RedisClient, caller_digest
from storefront.analytics.domain import Window, window_days
from storefront.observability import logger
from storefront.settings import Settings

__all__ = [
    "View",
    "ViewCounter",
    "ViewKeys",
    "ViewOutcome",
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

_RECORD = """
if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[4]) then
  return 0
end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('ZINCRBY', KEYS[3], 1, ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return 1
"""

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

    def seen(self, viewer: str, product_id: UUID) -> str:
        return f"{self._base}:seen:{viewer}:{product_id}"

    def popular(self, day: date) -> str:
        return f"{self._base}:popular:{day.isoformat()}"

    @property
    def scratch(self) -> str:
        # One for all: a script runs alone, and deletes it before it ends.
        return f"{self._base}:scratch"


@dataclass(frozen=True)
class View:
    product_id: UUID
    day: date
    # A digest of who viewed: no subject or IP in key names.
    viewer: str


async def record(
    redis: RedisClient, keys: ViewKeys, view: View, *, ttl_seconds: int, dedupe_seconds: int
) -> bool:
    """Count ``view`` unless its viewer was counted for the product in the window."""
    counted = await redis.eval(
        _RECORD,
        3,
        keys.seen(view.viewer, view.product_id),
        keys.pending,
        keys.popular(view.day),
        f"{view.day.isoformat()}:{view.product_id}",
        str(view.product_id),
        ttl_seconds,
        dedupe_seconds,
    )
    return bool(counted)


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


class ViewOutcome(StrEnum):
    COUNTED = "counted"
    # The viewer was counted for this product within the window.
    SEEN = "seen"
    # Redis could not count it.
    DROPPED = "dropped"


class ViewCounter:
    """The container's view counters in Redis, behind a circuit breaker: while
    Redis is down, views are dropped (and counted as dropped) without each
    paying a timeout, and popularity is read from PostgreSQL."""

    def __init__(self, redis: RedisClient, settings: Settings) -> None:
        self.redis = redis
        self.keys = ViewKeys(settings.redis_key_prefix)
        self.ttl_seconds = settings.views_retention_days * 86_400
        self.dedupe_seconds = settings.views_dedupe_seconds
        self.breaker = CircuitBreaker(settings.cache_breaker_cooldown_seconds)

    async def record(self, product_id: UUID, viewer: str, now: datetime) -> ViewOutcome:
        if self.breaker.is_open:
            return ViewOutcome.DROPPED
        view = View(product_id, now.date(), caller_digest(viewer))
        try:
            counted = await record(
                self.redis,
                self.keys,
                view,
                ttl_seconds=self.ttl_seconds,
                dedupe_seconds=self.dedupe_seconds,
            )
        except _REDIS_FAILURES as error:
            self.breaker.record_failure()
            logger.warning("redis unavailable, view not counted: %s", type(error).__name__)
            return ViewOutcome.DROPPED
        self.breaker.record_success()
        return ViewOutcome.COUNTED if counted else ViewOutcome.SEEN

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

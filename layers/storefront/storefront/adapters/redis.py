"""The Redis client: one per container, resilient to freezes and blips.

``REDIS_CLUSTER`` picks the kind: a plain client, or a Redis Cluster client
(ElastiCache Serverless speaks only the cluster protocol). Code takes either
as :data:`RedisClient` and keeps to what both offer: every command, script or
pipeline whose keys must meet on one node names keys with one hash tag
(``{events}`` for the event streams, leases and dead letters; the cache key's
own name for its value and lease; ``limits``' braces for a rate window), and
pipelines without a transaction may span slots.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, TypeAlias

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, RedisClusterException, RedisError, TimeoutError

from storefront.adapters.endpoints import redis_url
from storefront.settings import Settings

__all__ = ["REDIS_FAILURES", "RedisClient", "caller_digest", "create_redis"]

RedisClient: TypeAlias = Redis | RedisCluster

# What an unreachable or failing Redis raises, for code that degrades instead
# (cache bypass, rate limits fail open). The cluster client raises
# RedisClusterException, which is no RedisError, when no node answers.
REDIS_FAILURES = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)


def create_redis(settings: Settings) -> RedisClient:
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.redis_socket_timeout,
        "socket_timeout": settings.redis_socket_timeout,
        # A thawed container's socket may be dead: retry twice with a short
        # backoff, and ping connections idle for longer than the interval.
        # The cluster client retries the whole command instead, re-reading the
        # slot map first (a failover moves slots to another node).
        "retry": Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=2),
        "retry_on_error": [ConnectionError, TimeoutError],
        "health_check_interval": 30,
    }
    if settings.redis_cluster:
        return RedisCluster.from_url(redis_url(settings), **options)
    return Redis.from_url(redis_url(settings), **options)


def caller_digest(caller: str) -> str:
    """Who, as key names hold it: neither tokens' subjects nor IPs in Redis keys."""
    return hashlib.blake2b(caller.encode(), digest_size=16).hexdigest()

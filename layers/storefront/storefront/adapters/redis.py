"""The Redis client: one per container, resilient to freezes and blips."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

from storefront.adapters.endpoints import redis_url
from storefront.settings import Settings


def create_redis(settings: Settings) -> Redis:
    return Redis.from_url(
        redis_url(settings),
        socket_connect_timeout=settings.redis_socket_timeout,
        socket_timeout=settings.redis_socket_timeout,
        # A thawed container's socket may be dead: retry twice with a short
        # backoff, and ping connections idle for longer than the interval.
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=2),
        retry_on_error=[ConnectionError, TimeoutError],
        health_check_interval=30,
    )

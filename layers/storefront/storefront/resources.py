"""The I/O resources a function uses: engines, one Redis client, one cache.

Created lazily on first use (import time is cold-start time) and kept for the
life of the container. Tests build their own with :meth:`Resources.from_settings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.cache import Cache
from storefront.adapters.circuit_breaker import CircuitBreaker
from storefront.adapters.database import create_engine
from storefront.adapters.endpoints import read_database_url
from storefront.adapters.redis import REDIS_FAILURES, RedisClient, create_redis
from storefront.observability import logger
from storefront.settings import Settings


@dataclass
class Resources:
    settings: Settings
    _engine: AsyncEngine | None = field(default=None, repr=False)
    _read_engine: AsyncEngine | None = field(default=None, repr=False)
    _redis: RedisClient | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Resources:
        return cls(settings=settings)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_engine(self.settings)
        return self._engine

    @property
    def read_engine(self) -> AsyncEngine:
        """For reads that tolerate replica lag: the read endpoint's engine when
        one is configured, else the writer's engine itself (no second pool).
        Writes and reads of what a caller has just written use :attr:`engine`."""
        if self._read_engine is None:
            url = read_database_url(self.settings)
            if url is None:
                return self.engine
            self._read_engine = create_engine(self.settings, url)
        return self._read_engine

    @property
    def redis(self) -> RedisClient:
        if self._redis is None:
            self._redis = create_redis(self.settings)
        return self._redis

    @cached_property
    def cache(self) -> Cache:
        breaker = CircuitBreaker(cooldown_seconds=self.settings.cache_breaker_cooldown_seconds)
        return Cache(self.redis, self.settings, breaker)

    async def close(self) -> None:
        if self._redis is not None:
            redis, self._redis = self._redis, None
            try:
                await redis.aclose()
            except REDIS_FAILURES as error:
                # Best effort: a connection that does not close in time (the
                # socket timeout) is dropped all the same, and the engine
                # below must still be disposed of.
                logger.warning("redis client did not close cleanly: %s", type(error).__name__)
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        if self._read_engine is not None:
            await self._read_engine.dispose()
            self._read_engine = None
        self.__dict__.pop("cache", None)

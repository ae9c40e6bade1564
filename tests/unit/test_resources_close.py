"""Resources.close: a Redis client that fails to close does not keep the engine open."""

from __future__ import annotations

from typing import Any

from redis.exceptions import TimeoutError as RedisTimeout

from storefront.resources import Resources
from storefront.settings import Settings


class StuckRedis:
    async def aclose(self) -> None:
        raise RedisTimeout("Timed out closing connection after 0.5")


class CountingEngine:
    disposed = 0

    async def dispose(self) -> None:
        self.disposed += 1


async def test_a_redis_client_that_will_not_close_still_lets_the_engine_go() -> None:
    engine = CountingEngine()
    fake: Any = {"_engine": engine, "_redis": StuckRedis()}
    resources = Resources(settings=Settings(database_url="postgresql://unused/x"), **fake)

    await resources.close()

    assert engine.disposed == 1
    assert resources._redis is None
    assert resources._engine is None

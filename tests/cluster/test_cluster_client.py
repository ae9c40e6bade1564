"""The client kind follows REDIS_CLUSTER, with the same resilience options,
and the keys used together share a slot."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.crc import key_slot

from storefront.adapters.redis import create_redis
from storefront.events.consumer import blocking_reader
from storefront.events.leases import lease_key
from storefront.events.partitions import dead_letter_key, stream_key
from storefront.resources import Resources
from storefront.settings import Settings
from storefront.web.rate_limits import RateLimiter, RouteClass

pytestmark = pytest.mark.cluster


async def test_the_suites_here_run_on_three_masters(resources: Resources) -> None:
    assert isinstance(resources.redis, RedisCluster)
    await resources.redis.ping()
    assert len(resources.redis.get_primaries()) == 3


async def test_the_client_kind_follows_the_setting(settings: Settings) -> None:
    plain = create_redis(settings.model_copy(update={"redis_cluster": False}))
    cluster = create_redis(settings)
    try:
        assert type(plain) is Redis
        assert isinstance(cluster, RedisCluster)
        options = cluster.connection_kwargs
        assert options["socket_timeout"] == settings.redis_socket_timeout
        assert options["socket_connect_timeout"] == settings.redis_socket_timeout
        assert options["health_check_interval"] == 30
        assert cluster.retry.get_retries() == 2
    finally:
        await plain.aclose()
        await cluster.aclose()


async def test_the_blocking_reader_is_a_cluster_client_with_a_longer_timeout(
    settings: Settings,
) -> None:
    reader = blocking_reader(settings)
    try:
        assert isinstance(reader, RedisCluster)
        assert reader.connection_kwargs["socket_timeout"] > settings.worker_block_ms / 1000
    finally:
        await reader.aclose()


def test_event_keys_share_one_slot(settings: Settings) -> None:
    """One XREADGROUP over every partition, the leases script, a dead letter's MULTI."""
    prefix = settings.redis_key_prefix
    keys = [stream_key(prefix, p) for p in range(settings.event_partitions)]
    keys += [lease_key(prefix, "inventory", p) for p in range(settings.event_partitions)]
    keys.append(dead_letter_key(prefix))
    assert len({key_slot(key.encode()) for key in keys}) == 1


async def test_rate_limits_count_on_the_containers_own_client(
    resources: Resources, settings: Settings
) -> None:
    limiter = RateLimiter(resources.redis, settings)

    decision = await limiter.hit(RouteClass.READ, "probe", anonymous=False)

    assert decision is not None
    assert (decision.allowed, decision.remaining) == (True, decision.limit - 1)
    pattern = f"{settings.redis_key_prefix}ratelimit:*"
    assert [key async for key in resources.redis.scan_iter(match=pattern)]

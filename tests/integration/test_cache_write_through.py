"""Cache.put: a write puts the committed value through, and a reader that loaded
an older value (from a replica that had not replayed the write) cannot
replace it, whenever its load began."""

from __future__ import annotations

from storefront.adapters.cache import CacheOutcome
from storefront.resources import Resources


async def newer_value(resources: Resources, name: str) -> None:
    async def load() -> bytes:
        raise AssertionError("a value put through is served, not loaded")

    assert await resources.cache.get_or_load(name, load) == (b"new", CacheOutcome.HIT)


async def test_a_reader_holding_the_lease_when_the_write_lands_does_not_fill(
    resources: Resources,
) -> None:
    cache = resources.cache

    async def load_old_row_while_a_write_lands() -> bytes:
        assert await cache.put("put-race", b"new")
        return b"old"

    value, _ = await cache.get_or_load("put-race", load_old_row_while_a_write_lands)

    assert value == b"old", "the reader answers with what it read"
    await newer_value(resources, "put-race")


async def test_a_reader_that_took_the_lease_after_the_write_does_not_overwrite_it(
    resources: Resources,
) -> None:
    """The reader missed before the write landed and took its lease after:
    the lease is its own, but the value the write put there stays (SET NX)."""
    cache, redis = resources.cache, resources.redis
    lease_key = cache._lease_key("put-late")

    async def load_old_row_around_a_write() -> bytes:
        lease = await redis.get(lease_key)
        assert lease is not None, "the reader holds the lease while it loads"
        assert await cache.put("put-late", b"new")
        await redis.set(lease_key, lease)  # as if its SET NX came after the put
        return b"old"

    await cache.get_or_load("put-late", load_old_row_around_a_write)

    await newer_value(resources, "put-late")
    assert await redis.get(lease_key) is None, "the fill released the lease"


async def test_a_deleted_row_is_put_through_as_missing(resources: Resources) -> None:
    async def load_a_row_a_replica_still_has() -> bytes:
        return b"stale"

    assert await resources.cache.put("put-gone", None)

    value, outcome = await resources.cache.get_or_load("put-gone", load_a_row_a_replica_still_has)
    assert (value, outcome) == (None, CacheOutcome.HIT)

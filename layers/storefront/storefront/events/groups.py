"""Consumer groups: their one consumer name, and creating them on the streams.

Every partition stream is read by every consumer group; each group keeps its
own position and pending entries. Groups are created at id ``0`` with
``MKSTREAM``: a group that appears after the relay has already published
still reads every entry from the start (cleanup never trims below a group
that does not exist yet, see :mod:`.cleanup`).
"""

from __future__ import annotations

from collections.abc import Collection

from redis.exceptions import ResponseError

from storefront.adapters.redis import RedisClient
from storefront.events.partitions import stream_key
from storefront.settings import Settings

__all__ = ["consumer_name", "ensure_groups"]


def consumer_name(group: str) -> str:
    """The one consumer name a group reads every partition stream under.

    A stream IS one partition, so one name per group is one stable name per
    (group, partition): whoever holds a partition's lease next reads the
    entries a crashed holder left pending first, in order, with
    ``XREADGROUP ... 0``, and one ``XREADGROUP`` call can cover every
    partition a consumer holds.
    """
    return f"{group}-holder"


async def ensure_groups(redis: RedisClient, settings: Settings, groups: Collection[str]) -> None:
    """Create ``groups`` on every partition stream (and the streams); idempotent."""
    async with redis.pipeline(transaction=False) as pipe:
        for partition in range(settings.event_partitions):
            for group in groups:
                pipe.xgroup_create(
                    stream_key(settings.redis_key_prefix, partition), group, id="0", mkstream=True
                )
        results = await pipe.execute(raise_on_error=False)
    for result in results:
        # BUSYGROUP: the group exists already, which is the usual case.
        if isinstance(result, ResponseError) and str(result).startswith("BUSYGROUP"):
            continue
        if isinstance(result, Exception):
            raise result

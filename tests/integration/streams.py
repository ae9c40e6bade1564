"""Stream fixtures shared by the consumer, cleanup and admin tests."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.redis import RedisClient
from storefront.events.envelope import Event
from storefront.events.outbox import outbox
from storefront.events.partitions import partition_of, stream_key
from storefront.events.positions import sequence_of
from storefront.settings import Settings

# An XRANGE reply, decode_responses off: redis-py types ids and fields loosely
# (bytes or str, maybe None), so the tests cast to what Redis sends.
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


def fast_settings(settings: Settings, **changes: Any) -> Settings:
    """Short blocks and margins, so a test invocation takes a fraction of a second."""
    defaults: dict[str, Any] = {
        "event_partitions": 4,
        "worker_block_ms": 100,
        "time_budget_margin_ms": 50,
        "worker_batch_size": 10,
        "worker_max_deliveries": 3,
    }
    return settings.model_copy(update=defaults | changes)


def budget(seconds: float, done: Callable[[], bool] = lambda: False) -> Callable[[], int]:
    """A Lambda-like ``remaining_ms``: ends at the deadline, or as soon as ``done()``."""
    deadline = time.monotonic() + seconds

    def remaining_ms() -> int:
        return 0 if done() else int((deadline - time.monotonic()) * 1000)

    return remaining_ms


def aggregates_on_distinct_partitions(count: int, partitions: int) -> list[str]:
    """``count`` aggregate ids that each map to a different partition."""
    chosen: dict[int, str] = {}
    for n in itertools.count():
        aggregate = f"agg-{n}"
        chosen.setdefault(partition_of(aggregate, partitions), aggregate)
        if len(chosen) == count:
            return list(chosen.values())
    raise AssertionError("unreachable")


def stream_of(settings: Settings, aggregate_id: str) -> str:
    return stream_key(
        settings.redis_key_prefix, partition_of(aggregate_id, settings.event_partitions)
    )


async def publish(redis: RedisClient, settings: Settings, event: Event) -> str:
    """What the relay does with one event: XADD its envelope to its partition's
    stream, as the partition's next sequence number."""
    return await append_entry(
        redis, stream_of(settings, event.aggregate_id), {"envelope": event.model_dump_json()}
    )


async def append_entry(redis: RedisClient, stream: str, fields: dict[str, str]) -> str:
    """XADD any fields (poison too) as the stream's next sequence number."""
    (tail,) = await redis.register_script(_TAIL)(keys=[stream], args=[])
    entry_id = await redis.xadd(stream, fields, id=f"{sequence_of(tail.decode()) + 1}-0")  # type: ignore[arg-type]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


_TAIL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'0-0'} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then return {info[i + 1]} end
end
"""


async def emitted(engine: AsyncEngine, event_type: str) -> list[Event]:
    """The events handlers wrote to the outbox, in outbox (commit) order."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.envelope).where(outbox.c.event_type == event_type).order_by(outbox.c.id)
        )
        return [Event.model_validate(row.envelope) for row in rows]

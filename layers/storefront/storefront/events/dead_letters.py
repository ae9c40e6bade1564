"""The dead-letter stream: entries a consumer group gave up on.

An entry lands here when it cannot be parsed, names an unknown event type or
version, carries an invalid payload, or failed ``worker_max_deliveries``
times. Moving it is one ``MULTI``: ``XADD`` to the dead-letter stream and
``XACK`` on its own stream, so an entry is never lost between the two, nor
left both pending and dead-lettered (the two keys share the ``{events}`` hash
tag: one slot on a cluster).

Operators list, replay and purge dead letters (``storefront dlq``, and the
admin routes in :mod:`.api`). Replay appends the raw envelope to its original
stream again: every group sees it once more, and the groups that had already
handled it skip it through their inbox. A replayed event comes after events
of its aggregate published since, so replay is an operator's decision.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import BaseModel

from storefront.adapters.redis import RedisClient
from storefront.errors import NotFound
from storefront.events.partitions import dead_letter_key
from storefront.settings import Settings

__all__ = [
    "DeadLetter",
    "Replayed",
    "count_dead_letters",
    "dead_letter",
    "list_dead_letters",
    "purge",
    "replay",
]

REASON_MAX_LENGTH = 1_000
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")

# Re-checks under the script's atomicity that the dead letter still exists, so
# two concurrent replays of one id put it back once, not twice.
_REPLAY = """
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  return false
end
local new_id = redis.call('XADD', KEYS[2], '*', 'envelope', ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[1])
return new_id
"""


class DeadLetter(BaseModel):
    id: str
    reason: str
    deliveries: int
    group: str
    original_stream: str
    original_id: str
    failed_at: str
    # Read from the envelope when it parses, for the operator's eye only.
    event_type: str | None = None
    event_id: str | None = None
    aggregate_id: str | None = None
    envelope: str


class Replayed(BaseModel):
    id: str
    stream: str
    # The event's new entry on its stream.
    stream_id: str


async def dead_letter(
    redis: RedisClient,
    settings: Settings,
    *,
    stream: str,
    group: str,
    entry_id: str,
    envelope: str,
    reason: str,
    deliveries: int,
) -> None:
    """Move one entry of ``stream`` to the dead-letter stream, acknowledging it on ``stream``."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(
            dead_letter_key(settings.redis_key_prefix),
            {
                "envelope": envelope,
                "reason": reason[:REASON_MAX_LENGTH],
                "deliveries": str(deliveries),
                "original_stream": stream,
                "original_id": entry_id,
                "group": group,
                "failed_at": datetime.now(UTC).isoformat(),
            },
        )
        pipe.xack(stream, group, entry_id)
        await pipe.execute()


async def list_dead_letters(
    redis: RedisClient, settings: Settings, count: int = 100
) -> list[DeadLetter]:
    """The oldest ``count`` dead letters, oldest first."""
    entries = await redis.xrange(dead_letter_key(settings.redis_key_prefix), count=count)
    return [_dead_letter(entry_id, fields) for entry_id, fields in entries or []]


async def count_dead_letters(redis: RedisClient, settings: Settings) -> int:
    length: int = await redis.xlen(dead_letter_key(settings.redis_key_prefix))
    return length


async def replay(redis: RedisClient, settings: Settings, dead_letter_id: str) -> Replayed:
    """Put a dead letter back on its original stream, as a new entry."""
    letter = await _get(redis, settings, dead_letter_id)
    if not letter.original_stream.startswith(f"{settings.redis_key_prefix}{{events}}:"):
        # Never XADD to a key outside this deployment's event streams.
        raise NotFound(f"Dead letter {dead_letter_id} names no event stream of this deployment.")
    script = redis.register_script(_REPLAY)
    new_id = await script(
        keys=[dead_letter_key(settings.redis_key_prefix), letter.original_stream],
        args=[dead_letter_id, letter.envelope],
    )
    if not new_id:
        raise _not_found(dead_letter_id)
    return Replayed(id=dead_letter_id, stream=letter.original_stream, stream_id=_text(new_id))


async def purge(redis: RedisClient, settings: Settings, dead_letter_id: str | None = None) -> int:
    """Delete one dead letter (NotFound if absent), or all of them; returns how many."""
    key = dead_letter_key(settings.redis_key_prefix)
    if dead_letter_id is None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xlen(key)
            pipe.delete(key)
            length, _ = await pipe.execute()
        return int(length)
    if not _STREAM_ID.match(dead_letter_id) or not await redis.xdel(key, dead_letter_id):
        raise _not_found(dead_letter_id)
    return 1


async def _get(redis: RedisClient, settings: Settings, dead_letter_id: str) -> DeadLetter:
    if not _STREAM_ID.match(dead_letter_id):
        raise _not_found(dead_letter_id)
    key = dead_letter_key(settings.redis_key_prefix)
    entries = await redis.xrange(key, min=dead_letter_id, max=dead_letter_id, count=1)
    if not entries:
        raise _not_found(dead_letter_id)
    entry_id, fields = entries[0]
    return _dead_letter(entry_id, fields)


def _not_found(dead_letter_id: str) -> NotFound:
    return NotFound(f"No dead letter {dead_letter_id}.")


def _dead_letter(
    entry_id: bytes | str | None, fields: Mapping[bytes | str, bytes | str] | None
) -> DeadLetter:
    values = {_text(name): _text(value) for name, value in (fields or {}).items()}
    envelope = values.get("envelope", "")
    summary: dict[str, object] = {}
    try:
        parsed = json.loads(envelope)
        if isinstance(parsed, dict):
            summary = parsed
    except ValueError:
        pass  # an unparseable envelope is often why it is here; show it raw
    return DeadLetter(
        id=_text(entry_id),
        reason=values.get("reason", ""),
        deliveries=int(values.get("deliveries", "0") or 0),
        group=values.get("group", ""),
        original_stream=values.get("original_stream", ""),
        original_id=values.get("original_id", ""),
        failed_at=values.get("failed_at", ""),
        event_type=_optional_text(summary.get("event_type")),
        event_id=_optional_text(summary.get("event_id")),
        aggregate_id=_optional_text(summary.get("aggregate_id")),
        envelope=envelope,
    )


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)

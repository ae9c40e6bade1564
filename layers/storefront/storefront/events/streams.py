"""The relay's two stream commands: a checked append, and every stream's tail.

Both compare a stream's ``last-generated-id`` with what PostgreSQL says the
relay appended (:mod:`.positions`): the stream is where it should be when its
last id's milliseconds part is the partition's last sequence (only that part,
so a stream of an older deployment with time-based ids is adopted once, not
found diverged forever). The append does it inside a script, so the check and the
``XADD`` are one atomic step: a relay never appends after a stream that lost
entries, nor after a zombie relay's append it does not know about. Streams
keep their last id through trimming and deletions, and a stream that is gone
(or was recreated empty by ``XGROUP CREATE ... MKSTREAM``) ends at ``0-0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storefront.adapters.redis import RedisClient
from storefront.events.partitions import stream_key
from storefront.events.positions import entry_id, sequence_of
from storefront.settings import Settings

__all__ = ["StreamEntry", "append", "ends_at", "stream_tails"]

_LAST_ID = """
local function last_id(key)
  if redis.call('EXISTS', key) == 0 then
    return '0-0'
  end
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      return info[i + 1]
    end
  end
  return '0-0'
end
"""

# Appends a batch with explicit ids, one command and one reply for the batch
# (a pipeline of one XADD per row spends most of the relay's time building
# commands and parsing replies: ``make bench``). One key, so it also runs on
# Redis Cluster, and the batch lands whole or not at all. Returns the stream's
# tail as found: ARGV[1] when the batch was appended, anything else when not.
_CHECKED_APPEND = (
    _LAST_ID
    + """
local tail = last_id(KEYS[1])
if string.match(tail, '^%d+') ~= ARGV[1] then
  return tail
end
for i = 2, #ARGV, 4 do
  if ARGV[i + 1] == '' then
    redis.call('XADD', KEYS[1], ARGV[i], 'missing', '1')
  elseif ARGV[i + 3] == '' then
    redis.call('XADD', KEYS[1], ARGV[i], 'envelope', ARGV[i + 1], 'outbox_id', ARGV[i + 2])
  else
    redis.call('XADD', KEYS[1], ARGV[i], 'envelope', ARGV[i + 1], 'outbox_id', ARGV[i + 2],
               'only_group', ARGV[i + 3])
  end
end
return tail
"""
)

# Every partition stream's tail in one round trip (the keys share a hash tag).
_TAILS = (
    _LAST_ID
    + """
local tails = {}
for i, key in ipairs(KEYS) do
  tails[i] = last_id(key)
end
return tails
"""
)


@dataclass(frozen=True)
class StreamEntry:
    """An outbox row as its partition's stream carries it.

    With no envelope, a marker that events up to ``sequence`` are gone from the
    outbox too (deleted by hand): consumers settle it and go on, and the stream
    ends where PostgreSQL says again.
    """

    sequence: int
    outbox_id: int = 0
    envelope: str = ""
    only_group: str | None = None


def ends_at(tail: str, last_sequence: int) -> bool:
    """Whether a stream whose last id is ``tail`` ends at event ``last_sequence``."""
    return sequence_of(tail) == last_sequence


async def append(
    redis: RedisClient, stream: str, last_sequence: int, entries: Sequence[StreamEntry]
) -> str | None:
    """Append ``entries`` if the stream ends at ``last_sequence``.

    Returns None when appended, else the tail the stream was found at (and
    nothing was written).
    """
    args: list[str | int] = [last_sequence]
    for entry in entries:
        args += (entry_id(entry.sequence), entry.envelope, entry.outbox_id, entry.only_group or "")
    tail = _text(await redis.register_script(_CHECKED_APPEND)(keys=[stream], args=args))
    return None if ends_at(tail, last_sequence) else tail


async def stream_tails(redis: RedisClient, settings: Settings) -> list[str]:
    """The last id of every partition's stream, by partition."""
    keys = [
        stream_key(settings.redis_key_prefix, partition)
        for partition in range(settings.event_partitions)
    ]
    tails = await redis.register_script(_TAILS)(keys=keys, args=[])
    return [_text(tail) for tail in tails]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

"""Partition leases: at most one active consumer per (group, partition).

A consumer group alone would hand a stream's entries to whichever consumer
asks, so two invocations of one worker (schedules overlap) could handle two
events of one aggregate at the same time, out of order. A lease makes one
invocation the only reader of a partition for its group:

* taken with ``SET key token NX PX ttl`` (inside a script that also renews the
  leases this invocation already holds, one round trip per round);
* renewed every round while the holder works; the TTL is
  ``worker_claim_min_idle_ms``, above the worker function's timeout, so a
  live holder never loses it between two rounds;
* released at the end with a compare-and-delete script (only by the token
  that took it), so the next invocation picks the partition up at once. A
  crashed holder's lease simply expires after the TTL.

Lease keys carry the ``{events}`` hash tag like the streams, so the
multi-key scripts also run on Redis Cluster.
"""

from __future__ import annotations

from uuid import uuid4

from storefront.adapters.redis import RedisClient
from storefront.settings import Settings

__all__ = ["PartitionLeases", "lease_key"]

# Renews the leases this token holds and takes the free ones; returns the
# 1-based positions of the keys held afterwards.
_ACQUIRE_OR_RENEW = """
local held = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    held[#held + 1] = i
  elseif redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    held[#held + 1] = i
  end
end
return held
"""

# Deletes only the leases still held by this token: a lease that expired and
# was taken by another holder is not ours to release.
_RELEASE = """
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    released = released + 1
  end
end
return released
"""


def lease_key(prefix: str, group: str, partition: int) -> str:
    return f"{prefix}{{events}}:lease:{group}:{partition}"


class PartitionLeases:
    """The partitions one consumer invocation holds for one group."""

    def __init__(self, redis: RedisClient, settings: Settings, group: str) -> None:
        self._token = uuid4().hex
        self._ttl_ms = settings.worker_claim_min_idle_ms
        self._keys = [
            lease_key(settings.redis_key_prefix, group, partition)
            for partition in range(settings.event_partitions)
        ]
        self._acquire_or_renew = redis.register_script(_ACQUIRE_OR_RENEW)
        self._release = redis.register_script(_RELEASE)
        self.held: frozenset[int] = frozenset()

    async def refresh(self) -> frozenset[int]:
        """Renew what is held and take what is free; returns the newly taken partitions."""
        positions = await self._acquire_or_renew(keys=self._keys, args=[self._token, self._ttl_ms])
        before, self.held = self.held, frozenset(int(position) - 1 for position in positions)
        return self.held - before

    async def release(self) -> None:
        if self.held:
            await self._release(keys=self._keys, args=[self._token])
        self.held = frozenset()

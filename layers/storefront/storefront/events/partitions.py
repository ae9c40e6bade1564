"""Partitions: how events of one aggregate stay in order end to end.

An aggregate's events all map to one partition (a stable hash of its id). The
outbox row records the partition; one relay at a time publishes a partition,
in outbox id order, to that partition's stream; one consumer at a time per
group reads a partition's stream. Because writers lock the aggregate's row
before adding an event, an aggregate's outbox ids follow its commit order, so
the order survives every hop.
"""

from __future__ import annotations

import zlib


def partition_of(aggregate_id: str, partitions: int) -> int:
    # crc32, not hash(): it must agree across processes and deployments.
    return zlib.crc32(aggregate_id.encode()) % partitions


def stream_key(prefix: str, partition: int) -> str:
    # Every event stream shares one hash tag, so a single XREADGROUP can block
    # on all of them, on Redis Cluster as well.
    return f"{prefix}{{events}}:{partition}"


def dead_letter_key(prefix: str) -> str:
    return f"{prefix}{{events}}:dead"

"""The stream consumer: one worker invocation reads its group until its budget ends.

Order. An aggregate's events share one partition stream (:mod:`.partitions`),
and each (group, partition) has at most one active reader: an invocation
reads only the partitions whose lease it holds (:mod:`.leases`), one entry
after the other. All readers of a group use ONE consumer name
(:func:`.groups.consumer_name`); a stream is one partition, so the name is
stable per partition and the next lease holder re-reads what a crashed holder
left pending (``XREADGROUP ... 0``) before any new entry (``>``). Entries
pending under any other name (a consumer from an older deployment) are taken
over with ``XAUTOCLAIM`` once idle for ``worker_claim_min_idle_ms``, above the
function timeout, so a live reader never loses them.

Exactly-once effect. A run of one partition's entries is applied in one
transaction with the group's position (:mod:`.runs`); entries are ``XACK``-ed
only after their commit (one ``XACK`` per batch): a crash in between
redelivers them, and the position makes the redelivery a no-op.

Failures. A failing entry stays pending, the entries before it committed
(:mod:`.runs`), and its partition stops for the rest of this invocation (the
next entries of its aggregate must not overtake it); the other partitions go
on. The retry is the next invocation's re-read, a natural backoff. An entry
that failed on its ``worker_max_deliveries``-th delivery is dead-lettered
(:mod:`.dead_letters`) in the transaction that moves the position past it;
so is, at once, an entry that cannot be parsed or names an unknown event
type or version. An event type the group has no handler for is skipped:
every group reads every stream. Entries read but not attempted (behind a
failure, or past the time budget) get their delivery count back with
``XCLAIM ... RETRYCOUNT``, so an innocent entry queued behind a failing one
is not dead-lettered early; nor is one that met an unreachable database or
another unreachable dependency (:class:`~storefront.errors.DependencyUnavailable`:
the payment provider down), which ends the invocation instead.

Waiting. ``XREADGROUP ... BLOCK`` over every held partition at once (the
streams share a hash tag), never longer than the budget left: no busy loop.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence

from redis.exceptions import ResponseError
from redis.typing import StreamIdT
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.database import UnitOfWork, is_unavailable
from storefront.adapters.redis import RedisClient, create_redis
from storefront.errors import DependencyUnavailable
from storefront.events.delivery import (
    ConsumerStats,
    Entry,
    read_reply,
)
from storefront.events.groups import consumer_name, ensure_groups
from storefront.events.handlers import HandlerRegistry
from storefront.events.leases import PartitionLeases
from storefront.events.partitions import stream_key
from storefront.events.positions import group_positions
from storefront.events.runs import LostPartition, RunApplier
from storefront.observability import logger
from storefront.settings import Settings

__all__ = ["ConsumerStats", "blocking_reader", "ensure_groups", "run_consumer"]

RemainingMs = Callable[[], int]

# Above the longest BLOCK, so a blocked read is never cut by the socket timeout.
_READ_TIMEOUT_SLACK_SECONDS = 2.0


# JUSTID leaves the delivery count alone (the re-read that follows counts).
# A script, because redis-py's xautoclaim(justid=True) drops the cursor.
_AUTOCLAIM = """
return redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
                  'COUNT', ARGV[5], 'JUSTID')
"""


def blocking_reader(settings: Settings) -> RedisClient:
    """A client for ``XREADGROUP ... BLOCK``: the shared client's socket timeout
    (``redis_socket_timeout``) is shorter than a block, and a read that
    outlasts it would fail and be retried."""
    timeout = settings.worker_block_ms / 1000 + _READ_TIMEOUT_SLACK_SECONDS
    return create_redis(settings.model_copy(update={"redis_socket_timeout": timeout}))


async def run_consumer(
    registry: HandlerRegistry,
    engine: AsyncEngine,
    redis: RedisClient,
    settings: Settings,
    remaining_ms: RemainingMs,
    *,
    reader: RedisClient | None = None,
    stats: ConsumerStats | None = None,
) -> ConsumerStats:
    """Handle the group's events until ``remaining_ms()`` drops below the margin.

    ``reader`` does the blocking reads (:func:`blocking_reader`); one is made
    and closed for this call when none is given. ``stats`` is filled in as
    events are settled, so a caller still has the counts when this raises.
    """
    own_reader = reader is None
    consumer = _Consumer(
        registry,
        engine,
        redis,
        reader or blocking_reader(settings),
        settings,
        remaining_ms,
        stats or ConsumerStats(),
    )
    try:
        await consumer.run()
    finally:
        try:
            await consumer.leases.release()
        finally:
            if own_reader:
                await consumer.reader.aclose()
    return consumer.stats


class _Consumer:
    def __init__(
        self,
        registry: HandlerRegistry,
        engine: AsyncEngine,
        redis: RedisClient,
        reader: RedisClient,
        settings: Settings,
        remaining_ms: RemainingMs,
        stats: ConsumerStats,
    ) -> None:
        self.registry = registry
        self.group = registry.consumer
        self.name = consumer_name(self.group)
        self.engine = engine
        self.redis = redis
        self.reader = reader
        self.settings = settings
        self.remaining_ms = remaining_ms
        self.leases = PartitionLeases(redis, settings, self.group)
        self._autoclaim = redis.register_script(_AUTOCLAIM)
        self.stats = stats
        # Partitions whose pending entries must be read before new ones.
        self.history: set[int] = set()
        # Partitions stopped by a failure until the next invocation.
        self.parked: set[int] = set()
        self.runs = RunApplier(registry, engine, settings, self.stats)

    def stream(self, partition: int) -> str:
        return stream_key(self.settings.redis_key_prefix, partition)

    async def run(self) -> None:
        margin = self.settings.time_budget_margin_ms
        await ensure_groups(self.redis, self.settings, [self.group])
        while (budget := self.remaining_ms() - margin) > 0:
            taken = await self.leases.refresh()
            if taken:
                async with UnitOfWork(self.engine) as uow:
                    self.runs.positions |= await group_positions(uow.connection, self.group, taken)
                    await uow.commit()
            for partition in taken:
                await self._reclaim(partition)
                self.history.add(partition)
            held = self.leases.held
            self.history &= held
            self.parked &= held
            self.stats.partitions_held = max(self.stats.partitions_held, len(held))
            active = sorted(held - self.parked)
            if not active:
                # Another invocation holds every partition: wait for one to be
                # released, at the pace of a blocked read, not in a spin.
                await asyncio.sleep(min(self.settings.worker_block_ms, budget) / 1000)
                continue
            history = [partition for partition in active if partition in self.history]
            if history:
                batches = await self._read(dict.fromkeys(history, "0"), block_ms=None)
            else:
                block_ms = min(self.settings.worker_block_ms, budget)
                batches = await self._read(dict.fromkeys(active, ">"), block_ms=block_ms)
            for partition in history:
                if not batches.get(partition):
                    self.history.discard(partition)  # caught up: new entries from now on
            await self._process_side_by_side(
                {partition: entries for partition, entries in batches.items() if entries},
                redelivered=set(history),
            )

    async def _process_side_by_side(
        self, batches: dict[int, list[Entry]], *, redelivered: set[int]
    ) -> None:
        """Each partition's batch in order, up to ``worker_partition_concurrency``
        partitions at a time, each on a connection of its own.

        Partitions share no aggregate, so their batches are independent; one
        after the other, a worker spends much of its time waiting on
        PostgreSQL (``make bench``, py-spy: about a quarter of the inventory
        worker's samples in ``epoll``). Every batch runs to its end (its acks,
        its undelivered entries) before a failure is raised.
        """
        limit = asyncio.Semaphore(self.settings.worker_partition_concurrency)

        async def process(partition: int, entries: list[Entry]) -> None:
            async with limit:
                await self._process(partition, entries, redelivered=partition in redelivered)

        outcomes = await asyncio.gather(
            *(process(partition, entries) for partition, entries in batches.items()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _read(self, ids: dict[int, str], block_ms: int | None) -> dict[int, list[Entry]]:
        by_stream = {self.stream(partition): partition for partition in ids}
        self.stats.reads += 1
        try:
            reply = await self.reader.xreadgroup(
                self.group,
                self.name,
                {self.stream(partition): last_id for partition, last_id in ids.items()},
                count=self.settings.worker_batch_size,
                block=block_ms,
            )
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            # The group vanished (a Redis without persistence restarted):
            # recreate it and read again next round.
            await ensure_groups(self.redis, self.settings, [self.group])
            return {}
        return {by_stream[stream]: entries for stream, entries in read_reply(reply)}

    async def _reclaim(self, partition: int) -> None:
        """Take over entries left pending under other names by dead readers."""
        cursor: bytes | str = "0-0"
        while True:
            cursor, claimed, *_ = await self._autoclaim(
                keys=[self.stream(partition)],
                args=[
                    self.group,
                    self.name,
                    self.settings.worker_claim_min_idle_ms,
                    cursor,
                    self.settings.worker_batch_size,
                ],
            )
            self.stats.reclaimed += len(claimed)
            if cursor in (b"0-0", "0-0"):
                return

    async def _process(self, partition: int, entries: list[Entry], *, redelivered: bool) -> None:
        stream = self.stream(partition)
        if redelivered:
            entries = await self._with_deliveries(stream, entries)
        acks: list[str] = []
        try:
            while entries:
                if self.remaining_ms() < self.settings.time_budget_margin_ms // 2:
                    # Past the margin: leave the rest for the next holder
                    # rather than be killed mid-transaction by the deadline.
                    await self._undeliver(stream, entries)
                    return
                run = await self.runs.apply(partition, entries)
                acks += [entry.id for entry in entries[: run.settled]]
                if run.error is None:
                    return
                failing, error = entries[run.settled], run.error
                self.stats.failures += 1
                if is_unavailable(error) or isinstance(error, DependencyUnavailable):
                    # Not this entry's fault: do not count the attempt.
                    await self._undeliver(stream, entries[run.settled :])
                    raise error
                logger.error(
                    "event handler failed",
                    exc_info=error,
                    extra={"group": self.group, "stream": stream, "entry_id": failing.id},
                )
                if failing.deliveries < self.settings.worker_max_deliveries:
                    await self._undeliver(stream, entries[run.settled + 1 :])
                    self.parked.add(partition)
                    return
                reason = f"{type(error).__name__}: {error}"
                await self.runs.dead_letter_alone(partition, failing, reason)
                acks.append(failing.id)
                entries = entries[run.settled + 1 :]
        except LostPartition:
            # Its entries stay pending for the reader that took it over.
            logger.warning(
                "partition taken over by another reader",
                extra={"group": self.group, "partition": partition},
                exc_info=True,
            )
            self.parked.add(partition)
        finally:
            if acks:
                await self._ack(stream, acks)

    async def _ack(self, stream: str, ids: list[str]) -> None:
        try:
            await self.redis.xack(stream, self.group, *ids)
        except ResponseError as error:
            # The group vanished since the read (Redis lost it): nothing is
            # pending there, and the position already records what was done.
            if "NOGROUP" not in str(error):
                raise

    async def _with_deliveries(self, stream: str, entries: list[Entry]) -> list[Entry]:
        pending = await self.redis.xpending_range(
            stream,
            self.group,
            min=entries[0].id,
            max=entries[-1].id,
            count=len(entries),
            consumername=self.name,
        )
        counts = {_text(row["message_id"]): int(row["times_delivered"]) for row in pending}
        return [entry.delivered(counts.get(entry.id, entry.deliveries)) for entry in entries]

    async def _undeliver(self, stream: str, entries: Sequence[Entry]) -> None:
        """Give entries read but not attempted their previous delivery count back."""
        by_count: defaultdict[int, list[StreamIdT]] = defaultdict(list)
        for entry in entries:
            by_count[entry.deliveries - 1].append(entry.id)
        if not by_count:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for count, ids in by_count.items():
                pipe.xclaim(stream, self.group, self.name, 0, ids, retrycount=count, justid=True)
            await pipe.execute()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

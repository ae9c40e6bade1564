"""Applying a run of one partition's entries to PostgreSQL, exactly once.

A run is applied in ONE transaction, which also moves the group's position on
the partition (:mod:`.positions`) to the last entry applied, and writes the
events the handlers emit to the outbox. An entry at or below the position is
a redelivery and is skipped. The position's ``UPDATE`` is fenced (``WHERE
sequence = <the position this reader started from>``): a reader whose lease
expired, or was evicted, while another took over cannot commit twice or out
of order (:class:`LostPartition`). An entry above the position plus one means
the stream skipped events (a stream repaired from the settled position on,
or an older deployment's ids): the missing ones are read from the outbox,
which keeps every row until every group has settled it, and applied first.

A handler exception rolls the run back; the entries before the failing one
are applied again in a transaction of their own, so one failing event does
not undo the ones before it. A deadlock with another transaction (two
partitions' runs locking the same stock rows in another order) is no entry's
fault: the run is applied again one event per transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Text, cast, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.database import UnitOfWork, is_unavailable
from storefront.events.dead_letters import record_dead_letter
from storefront.events.delivery import (
    ConsumerStats,
    Delivery,
    Entry,
    Outcome,
    PoisonEntry,
    handle,
    route_entry,
)
from storefront.events.handlers import HandlerRegistry
from storefront.events.outbox import outbox
from storefront.events.positions import consumer_positions, entry_id
from storefront.observability import logger
from storefront.settings import Settings

__all__ = ["LostPartition", "Run", "RunApplier"]


class LostPartition(RuntimeError):
    """Another reader took the partition over: this one must not commit."""


class _EntryFailed(Exception):
    """Applying the ``index``-th entry of a run failed (None: one of a batch)."""

    def __init__(self, index: int | None, error: Exception) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


class _Batch:
    """Deliveries waiting to be handled together: consecutive events of one
    run handler; an event with a handler of its own is handled at once."""

    def __init__(self, uow: UnitOfWork, settings: Settings, outcomes: list[Outcome]) -> None:
        self.uow, self.settings, self.outcomes = uow, settings, outcomes
        self.waiting: list[tuple[int, Delivery]] = []

    async def add(self, index: int, delivery: Delivery) -> None:
        if self.waiting and delivery.run_handler is not self.waiting[0][1].run_handler:
            await self.flush()
        self.waiting.append((index, delivery))
        if delivery.run_handler is None:
            await self.flush()

    async def flush(self) -> None:
        if not self.waiting:
            return
        try:
            await handle([delivery for _, delivery in self.waiting], self.uow, self.settings)
        except Exception as error:
            # With one event the failing one is known; with more it is not.
            index = self.waiting[0][0] if len(self.waiting) == 1 else None
            raise _EntryFailed(index, error) from error
        self.outcomes.extend([Outcome.HANDLED] * len(self.waiting))
        self.waiting.clear()


@dataclass(frozen=True)
class Run:
    """How a run ended: ``settled`` entries committed, then maybe a failure."""

    settled: int
    error: Exception | None = None


class RunApplier:
    """One consumer invocation's PostgreSQL side for one group."""

    def __init__(
        self,
        registry: HandlerRegistry,
        engine: AsyncEngine,
        settings: Settings,
        stats: ConsumerStats,
    ) -> None:
        self.registry = registry
        self.group = registry.consumer
        self.engine = engine
        self.settings = settings
        self.stats = stats
        # The group's settled position per held partition, as last committed.
        self.positions: dict[int, int] = {}

    async def apply(
        self, partition: int, entries: Sequence[Entry], *, one_by_one: bool = False
    ) -> Run:
        """Apply entries in order, in one transaction, until one fails.

        Returns how many entries were settled (committed); on a failure, the
        error of the entry after them. ``one_by_one``: a transaction per
        entry, after a deadlock.
        """
        if one_by_one and len(entries) > 1:
            settled = 0
            for entry in entries:
                run = await self.apply(partition, [entry])
                settled += run.settled
                if run.error is not None:
                    return Run(settled, run.error)
            return Run(settled)
        start = self.positions[partition]
        try:
            async with UnitOfWork(self.engine) as uow:
                position, outcomes = await self._apply_in(uow, partition, start, entries)
                await self._settle(uow, partition, start, position)
                await uow.commit()
        except _EntryFailed as failed:
            error = failed.error
            if _is_deadlock(error):
                self.stats.conflicts += 1
                return await self.apply(partition, entries, one_by_one=True)
            if failed.index is None:
                # A run handler failed: find which event, one at a time.
                return await self.apply(partition, entries, one_by_one=True)
            if failed.index == 0 or is_unavailable(error):
                return Run(0, error)
            before = await self.apply(partition, entries[: failed.index])
            return Run(before.settled, before.error or error)
        self.positions[partition] = position
        self.stats.transactions += 1
        for outcome in outcomes:
            self.stats.count(outcome)
        return Run(len(entries))

    async def _apply_in(
        self, uow: UnitOfWork, partition: int, start: int, entries: Sequence[Entry]
    ) -> tuple[int, list[Outcome]]:
        """Apply entries in ``uow``'s transaction; returns the new position and
        what became of each. Consecutive events with a run handler go to it
        together. Raises :class:`_EntryFailed`."""
        position, outcomes = start, list[Outcome]()
        batch = _Batch(uow, self.settings, outcomes)
        for index, entry in enumerate(entries):
            if entry.sequence <= position:
                outcomes.append(Outcome.DUPLICATE)
                continue
            try:
                if entry.sequence > position + 1:
                    await batch.flush()
                    outcomes += await self._catch_up(uow, partition, position, entry.sequence)
                routed = await self._route(uow, partition, entry)
            except _EntryFailed:
                raise
            except Exception as error:
                raise _EntryFailed(index, error) from error
            position = entry.sequence
            if isinstance(routed, Outcome):
                outcomes.append(routed)
            else:
                await batch.add(index, routed)
        await batch.flush()
        return position, outcomes

    async def _route(self, uow: UnitOfWork, partition: int, entry: Entry) -> Delivery | Outcome:
        """The entry's delivery; or it is skipped, or dead-lettered here and now."""
        if entry.deliveries > self.settings.worker_max_deliveries:
            # Earlier holders died while handling it, without an answer.
            reason = f"delivered {entry.deliveries} times without finishing"
            return await self._dead_letter(uow, partition, entry, reason)
        try:
            delivery = route_entry(entry, self.registry)
        except PoisonEntry as poison:
            return await self._dead_letter(uow, partition, entry, poison.reason)
        return Outcome.SKIPPED if delivery is None else delivery

    async def _catch_up(
        self, uow: UnitOfWork, partition: int, position: int, sequence: int
    ) -> list[Outcome]:
        """Apply, from the outbox, the events between the position and an entry.

        The stream skipped them; every one of them is still in the outbox,
        which keeps a row until every group has settled it.
        """
        rows = await uow.connection.execute(
            select(
                outbox.c.sequence,
                cast(outbox.c.envelope, Text).label("envelope"),
                outbox.c.only_group,
            )
            .where(
                outbox.c.partition == partition,
                outbox.c.sequence > position,
                outbox.c.sequence < sequence,
            )
            .order_by(outbox.c.sequence)
        )
        outcomes = []
        for row in rows.all():
            fields = {b"envelope": row.envelope.encode()}
            if row.only_group:
                fields[b"only_group"] = row.only_group.encode()
            routed = await self._route(uow, partition, Entry(entry_id(row.sequence), fields))
            if not isinstance(routed, Outcome):
                await handle([routed], uow, self.settings)
                routed = Outcome.HANDLED
            outcomes.append(routed)
        self.stats.caught_up += len(outcomes)
        logger.warning(
            "stream skipped events: applied from the outbox",
            extra={"group": self.group, "partition": partition, "range": [position, sequence]},
        )
        return outcomes

    async def _settle(self, uow: UnitOfWork, partition: int, start: int, position: int) -> None:
        """Move the group's position, fenced by the position the run started from."""
        if position == start:
            return
        moved = await uow.connection.execute(
            update(consumer_positions)
            .where(
                consumer_positions.c.group_name == self.group,
                consumer_positions.c.partition == partition,
                consumer_positions.c.sequence == start,
            )
            .values(sequence=position)
        )
        if moved.rowcount != 1:
            raise LostPartition(
                f"group {self.group!r} partition {partition}: another reader moved the "
                f"position past {start}; this reader's lease had expired"
            )

    async def _dead_letter(
        self, uow: UnitOfWork, partition: int, entry: Entry, reason: str
    ) -> Outcome:
        """Keep the entry as a dead letter in the run's transaction; the
        position moves past it with the run."""
        logger.warning(
            "event dead-lettered",
            extra={
                "group": self.group,
                "partition": partition,
                "entry_id": entry.id,
                "reason": reason,
            },
        )
        await record_dead_letter(
            uow.connection,
            group=self.group,
            partition=partition,
            sequence=entry.sequence,
            envelope=entry.fields.get(b"envelope", b"").decode("utf-8", "replace"),
            reason=reason,
            deliveries=entry.deliveries,
        )
        return Outcome.DEAD_LETTERED

    async def dead_letter_alone(self, partition: int, entry: Entry, reason: str) -> None:
        """Dead-letter an entry whose handler failed, in a transaction of its own."""
        start = self.positions[partition]
        async with UnitOfWork(self.engine) as uow:
            outcome = await self._dead_letter(uow, partition, entry, reason)
            await self._settle(uow, partition, start, entry.sequence)
            await uow.commit()
        self.positions[partition] = entry.sequence
        self.stats.count(outcome)


def _is_deadlock(error: BaseException) -> bool:
    code = getattr(getattr(error, "orig", None), "sqlstate", None)
    return code in {"40P01", "40001"}  # deadlock_detected, serialization_failure

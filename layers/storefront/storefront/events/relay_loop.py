"""One relay invocation: relay passes until the time budget ends, woken by NOTIFY.

In ``loop`` mode an invocation keeps relaying until the Lambda's remaining
time drops below the margin. When a pass finds nothing to publish it waits on
PostgreSQL ``LISTEN``: every outbox writer calls ``pg_notify`` in its own
transaction, which PostgreSQL delivers only at commit, so the relay wakes
exactly when there is a committed row to publish. A short poll covers a
missed notification (a dropped LISTEN connection, a writer that bypassed
``add_events``). In ``single`` mode an invocation makes one pass and returns:
the cheapest deployment, at the cost of up to a schedule period of latency.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager, suppress
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.redis import RedisClient
from storefront.events.outbox import NOTIFY_CHANNEL
from storefront.events.relay import (
    AfterXadd,
    RelayStats,
    oldest_unpublished_age_seconds,
    relay_once,
)
from storefront.observability import logger, metrics
from storefront.resources import Resources
from storefront.scheduled_handler import ScheduledJob
from storefront.settings import Settings

__all__ = ["relay_job", "run_relay"]


async def run_relay(
    engine: AsyncEngine,
    redis: RedisClient,
    settings: Settings,
    remaining_ms: Callable[[], int],
    *,
    after_xadd: AfterXadd | None = None,
    on_wait: Callable[[], None] | None = None,
    groups: Collection[str] = (),
) -> RelayStats:
    """Relay for one invocation and record its metrics.

    ``on_wait`` is called each time the loop starts waiting for a
    notification (a test seam, like ``after_xadd``).
    """
    margin = settings.time_budget_margin_ms

    def has_time() -> bool:
        return remaining_ms() >= margin

    stats = RelayStats()
    try:
        if settings.relay_mode == "single":
            stats.merge(
                await relay_once(
                    engine,
                    redis,
                    settings,
                    has_time=has_time,
                    after_xadd=after_xadd,
                    groups=groups,
                )
            )
        else:
            async with _notifications(engine) as woken:
                while has_time():
                    # Cleared before the pass: a commit during the pass sets it
                    # again, so the wait below returns at once and nothing waits
                    # for the poll.
                    woken.clear()
                    passed = await relay_once(
                        engine,
                        redis,
                        settings,
                        has_time=has_time,
                        after_xadd=after_xadd,
                        groups=groups,
                    )
                    stats.merge(passed)
                    if passed.relayed:
                        continue
                    wait_seconds = min(
                        settings.relay_poll_seconds, (remaining_ms() - margin) / 1000
                    )
                    if wait_seconds <= 0:
                        break
                    if on_wait is not None:
                        on_wait()
                    with suppress(TimeoutError):
                        await asyncio.wait_for(woken.wait(), wait_seconds)
    finally:
        # Recorded even when a pass failed: what was relayed before is real.
        metrics.add_metric(name="EventsRelayed", unit=MetricUnit.Count, value=stats.relayed)
        # The largest batch: equal to relay_batch_size means the relay is
        # working through a backlog.
        metrics.add_metric(name="RelayBatchSize", unit=MetricUnit.Count, value=stats.largest_batch)
        # Streams found to have lost entries (the template alarms on it), and
        # what was appended again from the outbox to repair them.
        repairs = stats.repairs
        metrics.add_metric(
            name="StreamRepairs", unit=MetricUnit.Count, value=len(repairs.repaired_partitions)
        )
        metrics.add_metric(
            name="EventsRepublished", unit=MetricUnit.Count, value=repairs.republished
        )
    age = await oldest_unpublished_age_seconds(engine)
    metrics.add_metric(name="OutboxOldestUnpublishedAgeSeconds", unit=MetricUnit.Seconds, value=age)
    logger.info("relay finished", extra=stats.summary() | {"oldest_unpublished_age": age})
    return stats


def relay_job(groups: Collection[str]) -> ScheduledJob:
    """The scheduled job of ``functions/outbox_relay``; ``groups`` bound what a
    stream repair republishes."""

    async def relay(resources: Resources, context: LambdaContext) -> dict[str, Any]:
        stats = await run_relay(
            resources.engine,
            resources.redis,
            resources.settings,
            remaining_ms=context.get_remaining_time_in_millis,
            groups=groups,
        )
        return stats.summary()

    return relay


@asynccontextmanager
async def _notifications(engine: AsyncEngine) -> AsyncIterator[asyncio.Event]:
    """An event set whenever a NOTIFY on the outbox channel arrives.

    The LISTEN connection is a pooled one, checked out for the invocation and
    returned (UNLISTENed) at its end: the pool keeps the physical connection
    warm across invocations, and a connection left listening while the
    container is frozen would only pile up notifications nobody reads.
    Behind RDS Proxy, LISTEN pins the client connection to one database
    connection for the whole session, so each relay container holds one
    database connection while it runs.
    """
    woken = asyncio.Event()

    def wake(*_: object) -> None:
        woken.set()

    async with engine.connect() as connection:
        pooled = await connection.get_raw_connection()
        listener = pooled.driver_connection  # the asyncpg connection itself
        if listener is None:
            raise RuntimeError("the pooled connection has no driver connection")
        await listener.add_listener(NOTIFY_CHANNEL, wake)
        try:
            yield woken
        finally:
            try:
                await listener.remove_listener(NOTIFY_CHANNEL, wake)
            except Exception:
                # A connection that may still be listening must not go back to the pool.
                await connection.invalidate()

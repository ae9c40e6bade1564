"""The job a worker function runs on each scheduled invocation.

``functions/<x>_worker/app.py`` is ``handler = scheduled_handler(worker_job(registry))``:
each invocation consumes the registry's group until the Lambda time budget
(minus the margin) runs out (:mod:`.consumer`), then publishes its metrics.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from storefront.adapters.redis import RedisClient
from storefront.events.consumer import ConsumerStats, blocking_reader, run_consumer
from storefront.events.dead_letters import count_dead_letters
from storefront.events.handlers import HandlerRegistry
from storefront.events.status import GroupStatus, add_settlement, group_statuses, outbox_status
from storefront.observability import metrics
from storefront.resources import Resources
from storefront.scheduled_handler import ScheduledJob

__all__ = ["publish_consumer_metrics", "worker_job"]


def worker_job(registry: HandlerRegistry) -> ScheduledJob:
    """The scheduled job consuming ``registry.consumer``'s group."""
    # Kept for the container's life, like the shared client, and made on the
    # first invocation so it belongs to the container's loop.
    reader: RedisClient | None = None

    async def consume(resources: Resources, context: LambdaContext) -> dict[str, Any]:
        nonlocal reader
        if reader is None:
            reader = blocking_reader(resources.settings)
        stats = ConsumerStats()
        try:
            await run_consumer(
                registry,
                resources.engine,
                resources.redis,
                resources.settings,
                context.get_remaining_time_in_millis,
                reader=reader,
                stats=stats,
            )
        except Exception:
            # What was settled before the failure is real; Redis or
            # PostgreSQL, which the status needs, may be what failed.
            publish_consumer_metrics(registry.consumer, stats)
            raise
        (status,) = await group_statuses(
            resources.redis, resources.settings, [registry.consumer], discover=False
        )
        waiting = await outbox_status(resources.engine)
        await add_settlement(resources.engine, resources.settings, [status], waiting)
        dead_letters = await count_dead_letters(resources.engine)
        publish_consumer_metrics(registry.consumer, stats, status, dead_letters)
        return {"group": registry.consumer, **stats.summary()} | {
            "lag": status.lag,
            "pending": status.pending,
            "unsettled": status.unsettled,
            "oldest_unsettled_age_seconds": status.oldest_unsettled_age_seconds,
            "dead_letters": dead_letters,
        }

    return consume


def publish_consumer_metrics(
    group: str,
    stats: ConsumerStats,
    status: GroupStatus | None = None,
    dead_letters: int | None = None,
) -> None:
    """EMF metrics of one invocation, with the group as a dimension; the
    counters alone when the invocation failed before its status was read."""
    # Ephemeral: its own dimension set, which must not leak into the metrics
    # other code adds to the shared ``metrics`` during this invocation.
    group_metrics = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
    group_metrics.add_dimension(name="ConsumerGroup", value=group)
    counts = [
        ("EventsHandled", stats.handled),
        ("EventsDuplicate", stats.duplicates),
        ("HandlerFailures", stats.failures),
        ("DeadLettered", stats.dead_lettered),
    ]
    if status is not None:
        counts += [
            ("ConsumerLag", status.lag),
            ("ConsumerPending", status.pending),
            ("ConsumerUnsettled", status.unsettled),
        ]
        # The alarm on a stuck group: an event it has not settled for too
        # long, whatever Redis says (PostgreSQL's view: a lost stream shows).
        group_metrics.add_metric(
            name="OldestUnsettledAgeSeconds",
            unit=MetricUnit.Seconds,
            value=status.oldest_unsettled_age_seconds or 0.0,
        )
    for name, value in counts:
        group_metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    group_metrics.flush_metrics()
    if dead_letters is not None:
        # One dead-letter table for every group: no group dimension.
        metrics.add_metric(name="DeadLetterCount", unit=MetricUnit.Count, value=dead_letters)

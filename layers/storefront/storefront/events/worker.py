"""The job a worker function runs on each scheduled invocation.

``functions/<x>_worker/app.py`` is ``handler = scheduled_handler(worker_job(registry))``:
each invocation consumes the registry's group until the Lambda time budget
(minus the margin) runs out (:mod:`.consumer`), then publishes its metrics.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

import storefront.event_types  # noqa: F401  (every payload type, so none looks unknown)
from storefront.adapters.redis import RedisClient
from storefront.events.consumer import ConsumerStats, blocking_reader, run_consumer
from storefront.events.dead_letters import count_dead_letters
from storefront.events.groups import CONSUMER_GROUPS
from storefront.events.handlers import HandlerRegistry
from storefront.events.status import GroupStatus, add_settlement, group_statuses, outbox_status
from storefront.observability import metrics
from storefront.resources import Resources
from storefront.scheduled_handler import ScheduledJob

__all__ = ["publish_consumer_metrics", "worker_job"]


def worker_job(registry: HandlerRegistry) -> ScheduledJob:
    """The scheduled job consuming ``registry.consumer``'s group."""
    if registry.consumer not in CONSUMER_GROUPS:
        # Cleanup only waits for the groups it knows: an unlisted group could
        # have entries trimmed before it first reads them.
        raise ValueError(
            f"consumer group {registry.consumer!r} is not in "
            "storefront.events.groups.CONSUMER_GROUPS; add it there"
        )
    # Kept for the container's life, like the shared client, and made on the
    # first invocation so it belongs to the container's loop.
    reader: RedisClient | None = None

    async def consume(resources: Resources, context: LambdaContext) -> dict[str, Any]:
        nonlocal reader
        if reader is None:
            reader = blocking_reader(resources.settings)
        stats = await run_consumer(
            registry,
            resources.engine,
            resources.redis,
            resources.settings,
            context.get_remaining_time_in_millis,
            reader=reader,
        )
        (status,) = await group_statuses(
            resources.redis, resources.settings, [registry.consumer], discover=False
        )
        waiting = await outbox_status(resources.engine)
        await add_settlement(resources.engine, resources.settings, [status], waiting)
        dead_letters = await count_dead_letters(resources.engine)
        publish_consumer_metrics(stats, status, dead_letters)
        return {"group": registry.consumer, **stats.summary()} | {
            "lag": status.lag,
            "pending": status.pending,
            "unsettled": status.unsettled,
            "oldest_unsettled_age_seconds": status.oldest_unsettled_age_seconds,
            "dead_letters": dead_letters,
        }

    return consume


def publish_consumer_metrics(stats: ConsumerStats, status: GroupStatus, dead_letters: int) -> None:
    """EMF metrics of one invocation, with the group as a dimension."""
    # Ephemeral: its own dimension set, which must not leak into the metrics
    # other code adds to the shared ``metrics`` during this invocation.
    group_metrics = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
    group_metrics.add_dimension(name="ConsumerGroup", value=status.group)
    for name, value in (
        ("EventsHandled", stats.handled),
        ("EventsDuplicate", stats.duplicates),
        ("HandlerFailures", stats.failures),
        ("DeadLettered", stats.dead_lettered),
        ("ConsumerLag", status.lag),
        ("ConsumerPending", status.pending),
        ("ConsumerUnsettled", status.unsettled),
    ):
        group_metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    # The alarm on a stuck group: an event it has not settled for too long,
    # whatever Redis says (PostgreSQL's view, so a lost stream shows too).
    group_metrics.add_metric(
        name="OldestUnsettledAgeSeconds",
        unit=MetricUnit.Seconds,
        value=status.oldest_unsettled_age_seconds or 0.0,
    )
    group_metrics.flush_metrics()
    # The dead-letter stream is shared by every group: no group dimension.
    metrics.add_metric(name="DeadLetterCount", unit=MetricUnit.Count, value=dead_letters)

"""Turns an async job into a Lambda handler for scheduled (EventBridge) invocations.

The relay, the workers and cleanup share this wiring: the job runs on the
container's one event loop (never ``asyncio.run``, which would close the loop
and strand the pooled connections), with the container's resources, under
Powertools' logger context and EMF metrics flush.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from storefront.observability import logger, metrics, tracer
from storefront.resources import Resources
from storefront.runtime import container_loop, container_resources, run

__all__ = ["ScheduledHandler", "ScheduledJob", "scheduled_handler"]

# An ``async def`` taking the container's resources and the Lambda context.
ScheduledJob = Callable[[Resources, LambdaContext], Coroutine[Any, Any, dict[str, Any]]]
ScheduledHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

# A job whose invocation had nothing to record is normal, not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def scheduled_handler(job: ScheduledJob) -> ScheduledHandler:
    """A handler that runs ``job`` and returns its small summary dict."""
    container_loop()

    @metrics.log_metrics
    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # The job gets the context, not the event: a schedule carries no input
        # the jobs need, and the context carries the time budget.
        return run(job(container_resources(), context))

    return handler

"""Outbox relay function: EventBridge schedule -> outbox rows -> Redis Streams."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from storefront.events.relay_loop import run_relay
from storefront.resources import Resources
from storefront.scheduled_handler import scheduled_handler


async def relay(resources: Resources, context: LambdaContext) -> dict[str, Any]:
    stats = await run_relay(
        resources.engine,
        resources.redis,
        resources.settings,
        remaining_ms=context.get_remaining_time_in_millis,
    )
    return stats.summary()


handler = scheduled_handler(relay)

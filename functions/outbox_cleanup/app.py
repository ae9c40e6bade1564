"""Outbox cleanup function: EventBridge schedule -> settled outbox rows and stream entries go."""

from storefront.scheduled_handler import scheduled_handler
from storefront.wiring import cleanup

handler = scheduled_handler(cleanup())

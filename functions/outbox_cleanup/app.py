"""Outbox cleanup function: EventBridge schedule -> retention of outbox, inbox, streams."""

from storefront.events.cleanup import cleanup_job
from storefront.scheduled_handler import scheduled_handler

handler = scheduled_handler(cleanup_job())

"""Outbox relay function: EventBridge schedule -> outbox rows -> Redis Streams."""

from storefront.scheduled_handler import scheduled_handler
from storefront.wiring import relay

handler = scheduled_handler(relay())

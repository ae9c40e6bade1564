"""Checkout sweep function: EventBridge schedule -> orders not paid in time expire."""

from storefront.scheduled_handler import scheduled_handler
from storefront.wiring import checkout_sweep

handler = scheduled_handler(checkout_sweep())

"""Payments worker: a PaymentIntent per order awaiting payment; cancels and refunds."""

from storefront.scheduled_handler import scheduled_handler
from storefront.wiring import worker

handler = scheduled_handler(worker("payments"))

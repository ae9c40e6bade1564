"""Notifications worker: emails customers what became of their orders (SES)."""

from storefront.scheduled_handler import scheduled_handler
from storefront.wiring import worker

handler = scheduled_handler(worker("notifications"))

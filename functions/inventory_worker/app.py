"""Inventory worker: reserves and releases stock as order events arrive."""

from storefront.scheduled_handler import scheduled_handler
from storefront.wiring import worker

handler = scheduled_handler(worker("inventory"))

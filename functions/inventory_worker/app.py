"""Inventory worker: reserves and releases stock as order events arrive."""

from storefront.events.worker import worker_job
from storefront.inventory.handlers import inventory_handlers
from storefront.scheduled_handler import scheduled_handler

handler = scheduled_handler(worker_job(inventory_handlers))

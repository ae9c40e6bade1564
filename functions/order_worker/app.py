"""Order worker: confirms or rejects orders from inventory's answers."""

from storefront.events.worker import worker_job
from storefront.orders.handlers import order_handlers
from storefront.scheduled_handler import scheduled_handler

handler = scheduled_handler(worker_job(order_handlers))

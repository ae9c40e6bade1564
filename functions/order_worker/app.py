"""Order worker: confirms or rejects orders from inventory's answers."""

from storefront.scheduled_handler import scheduled_handler
from storefront.wiring import worker

handler = scheduled_handler(worker("orders"))

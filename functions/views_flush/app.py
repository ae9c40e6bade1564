"""Views flush function: EventBridge schedule -> view counts from Redis into PostgreSQL."""

from storefront.scheduled_handler import scheduled_handler
from storefront.wiring import views_flush

handler = scheduled_handler(views_flush())

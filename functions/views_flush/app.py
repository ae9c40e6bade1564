"""Views flush function: EventBridge schedule -> view counts from Redis into PostgreSQL."""

from storefront.analytics.flush import views_flush_job
from storefront.scheduled_handler import scheduled_handler

handler = scheduled_handler(views_flush_job())

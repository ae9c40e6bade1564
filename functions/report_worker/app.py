"""Report worker: builds requested reports and uploads them to S3."""

from storefront.scheduled_handler import scheduled_handler
from storefront.wiring import worker

handler = scheduled_handler(worker("reports"))

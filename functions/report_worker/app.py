"""Report worker: builds requested reports and uploads them to S3."""

from storefront.events.worker import worker_job
from storefront.reports.handlers import report_handlers
from storefront.runtime import container_resources
from storefront.scheduled_handler import scheduled_handler

handler = scheduled_handler(worker_job(report_handlers(container_resources)))

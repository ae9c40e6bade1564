"""Reports API function: API Gateway HTTP API -> reports (built by the report worker)."""

from storefront.web.lambda_handler import api_handler
from storefront.wiring import reports_app

handler = api_handler(reports_app())

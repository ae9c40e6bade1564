"""Reports API function: API Gateway HTTP API -> Mangum -> FastAPI."""

from storefront.reports.api import create_reports_app
from storefront.web.lambda_handler import api_handler

handler = api_handler(create_reports_app())

"""Orders API function: API Gateway HTTP API -> orders, stock, event admin routes."""

from storefront.web.lambda_handler import api_handler
from storefront.wiring import orders_app

handler = api_handler(orders_app())

"""Orders API function: API Gateway HTTP API -> Mangum -> FastAPI."""

from storefront.orders.api import create_orders_app
from storefront.web.lambda_handler import api_handler

handler = api_handler(create_orders_app())

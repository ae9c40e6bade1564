"""Catalog API function: API Gateway HTTP API -> products, categories, product views."""

from storefront.web.lambda_handler import api_handler
from storefront.wiring import catalog_app

handler = api_handler(catalog_app())

"""Catalog API function: API Gateway HTTP API -> Mangum -> FastAPI."""

from storefront.catalog.api import create_catalog_app
from storefront.web.lambda_handler import api_handler

handler = api_handler(create_catalog_app())

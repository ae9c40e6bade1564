"""The product catalog: categories and products.

The facade: what other contexts may use of the catalog. Everything else in
this package is its own business.
"""

from storefront.catalog.domain import ProductNotFound
from storefront.catalog.reads import prices_of, product_exists, products_view
from storefront.catalog.service import get_product

__all__ = ["ProductNotFound", "get_product", "prices_of", "product_exists", "products_view"]

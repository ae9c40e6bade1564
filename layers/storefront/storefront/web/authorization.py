"""Who may do what, as the dependencies routes declare.

- Anyone: catalog reads, ``/health`` (no dependency at all).
- Any authenticated subject (:data:`~storefront.web.authentication.Customer`):
  place orders, read, list and cancel their own (the orders use cases scope
  every query to the caller, so another customer's order is a 404).
- Admin: catalog writes (:data:`CatalogWriter`), stock (:data:`StockKeeper`),
  every order, and everything under ``/admin`` (:mod:`storefront.web.admin`).
"""

from __future__ import annotations

from storefront.web.authentication import AdminPrincipal

__all__ = ["CatalogWriter", "StockKeeper"]

CatalogWriter = AdminPrincipal
StockKeeper = AdminPrincipal

"""Inventory: stock levels and the reservations orders make.

The facade: checkout holds an order's stock in its own transaction
(:func:`hold_stock`); everything else about stock happens through events.
"""

from storefront.inventory.events import Shortage
from storefront.inventory.holds import hold_stock

__all__ = ["Shortage", "hold_stock"]

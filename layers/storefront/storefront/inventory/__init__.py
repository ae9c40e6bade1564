"""Inventory: stock levels and the reservations orders make."""

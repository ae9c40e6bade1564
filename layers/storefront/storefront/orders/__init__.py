"""Orders: placing, confirming, rejecting and cancelling them.

The facade: what other contexts may use of orders (their events aside).
"""

from storefront.orders.domain import OrderStatus
from storefront.orders.reads import order_lines_view, orders_view, pending_orders

__all__ = ["OrderStatus", "order_lines_view", "orders_view", "pending_orders"]

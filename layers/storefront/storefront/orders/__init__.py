"""Orders: placing, confirming, rejecting and cancelling them.

The facade: what other contexts may use of orders (their events aside).
"""

from storefront.orders.domain import OrderStatus
from storefront.orders.reads import (
    OrderLineSummary,
    OrderSummary,
    order_lines_view,
    order_summary,
    orders_view,
    pending_orders,
    statuses_of,
)

__all__ = [
    "OrderLineSummary",
    "OrderStatus",
    "OrderSummary",
    "order_lines_view",
    "order_summary",
    "orders_view",
    "pending_orders",
    "statuses_of",
]

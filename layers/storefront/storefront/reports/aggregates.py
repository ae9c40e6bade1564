"""The SQL behind each report type: one aggregate query, its columns named.

PostgreSQL groups and sorts; the builder only streams the finished rows, so
a report's memory is one fetch of rows, whatever its range. The data is the
other contexts': read through the read models their facades publish, never
their tables.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Select, cast, func, literal_column, select

from storefront.analytics import daily_views_view
from storefront.catalog import products_view
from storefront.orders import OrderStatus, order_lines_view, orders_view
from storefront.reports.domain import ReportType, utc_bounds

__all__ = ["aggregate"]


def aggregate(report_type: ReportType, first: date, last: date) -> Select[tuple[object, ...]]:
    """The query for ``report_type`` over the UTC days ``first`` to ``last``."""
    if report_type is ReportType.SALES_BY_PRODUCT:
        return _sales_by_product(first, last)
    if report_type is ReportType.ORDERS_BY_STATUS:
        return _orders_by_status(first, last)
    return _top_viewed(first, last)


def _sales_by_product(first: date, last: date) -> Select[tuple[object, ...]]:
    """Confirmed orders placed in the range, per product and currency."""
    start, end = utc_bounds(first, last)
    orders, order_items, products = orders_view(), order_lines_view(), products_view()
    revenue = func.sum(order_items.c.quantity * order_items.c.unit_price)
    return (
        select(
            order_items.c.product_id,
            products.c.sku,
            products.c.name,
            orders.c.currency,
            func.count().label("orders"),
            func.sum(order_items.c.quantity).label("units"),
            revenue.label("revenue"),
        )
        .join(orders, orders.c.order_id == order_items.c.order_id)
        .outerjoin(products, products.c.product_id == order_items.c.product_id)
        .where(
            orders.c.status == OrderStatus.CONFIRMED.value,
            orders.c.created_at >= start,
            orders.c.created_at < end,
        )
        .group_by(order_items.c.product_id, products.c.sku, products.c.name, orders.c.currency)
        .order_by(revenue.desc(), order_items.c.product_id)
    )


def _orders_by_status(first: date, last: date) -> Select[tuple[object, ...]]:
    """Orders placed per UTC day, status and currency, with their total amount."""
    start, end = utc_bounds(first, last)
    orders = orders_view()
    day = cast(func.timezone("UTC", orders.c.created_at), Date).label("day")
    return (
        select(
            day,
            orders.c.status,
            orders.c.currency,
            func.count().label("orders"),
            func.sum(orders.c.total).label("amount"),
        )
        .where(orders.c.created_at >= start, orders.c.created_at < end)
        .group_by(literal_column("1"), orders.c.status, orders.c.currency)
        .order_by(literal_column("1"), orders.c.status, orders.c.currency)
    )


def _top_viewed(first: date, last: date) -> Select[tuple[object, ...]]:
    """Views flushed to PostgreSQL per product over the range, most viewed first."""
    product_views_daily, products = daily_views_view(), products_view()
    views = func.sum(product_views_daily.c.views)
    return (
        select(
            product_views_daily.c.product_id,
            products.c.sku,
            products.c.name,
            views.label("views"),
        )
        .outerjoin(products, products.c.product_id == product_views_daily.c.product_id)
        .where(product_views_daily.c.day.between(first, last))
        .group_by(product_views_daily.c.product_id, products.c.sku, products.c.name)
        .order_by(views.desc(), product_views_daily.c.product_id)
    )

"""What other contexts may read of product views: read models, not its tables."""

from __future__ import annotations

from sqlalchemy import Subquery, select

from storefront.analytics.tables import product_views_daily

__all__ = ["daily_views_view"]


def daily_views_view() -> Subquery:
    """Views flushed to PostgreSQL per ``product_id`` and UTC ``day``."""
    return select(
        product_views_daily.c.day, product_views_daily.c.product_id, product_views_daily.c.views
    ).subquery("analytics_daily_views")

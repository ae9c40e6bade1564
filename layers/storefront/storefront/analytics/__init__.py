"""Product views: counted in Redis per view, flushed to PostgreSQL on a schedule.

The facade: what other contexts may use of product views.
"""

from storefront.analytics.reads import daily_views_view

__all__ = ["daily_views_view"]

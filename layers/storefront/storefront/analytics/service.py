"""Product-view use cases: count a view, rank the most viewed.

Counting answers from Redis alone: the product's existence comes from the
catalog cache (a known product's cached body, or the marker cached for a
missing one), so a flood of views -- of real or made-up ids -- does not
query PostgreSQL per view. Losing a view to a Redis outage is accepted: it is
a counter, not a record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from storefront import catalog
from storefront.adapters.cache import Cache
from storefront.adapters.database import UnitOfWork
from storefront.analytics import repository
from storefront.analytics.counters import ViewCounter, ViewOutcome
from storefront.analytics.domain import Popular, Window, ranked, window_days
from storefront.observability import metrics


async def record_view(
    product_id: UUID, viewer: str, engine: AsyncEngine, cache: Cache, counter: ViewCounter
) -> ViewOutcome:
    """Count a view of an existing product, once per viewer and window;
    ProductNotFound for an unknown product."""
    await catalog.get_product(product_id, engine, cache)
    outcome = await counter.record(product_id, viewer, datetime.now(UTC))
    if outcome is ViewOutcome.DROPPED:
        metrics.add_metric(name="ProductViewsDropped", unit="Count", value=1)
    return outcome


async def popular(window: Window, limit: int, engine: AsyncEngine, counter: ViewCounter) -> Popular:
    """From Redis; from PostgreSQL when Redis is down, or empty (restarted
    without its data), where the flushed counts are."""
    now = datetime.now(UTC)
    best = await counter.top(window, now, limit)
    if best:
        return Popular(window=window, source="redis", items=ranked(best, limit))
    async with UnitOfWork(engine) as uow:
        stored = await repository.top(uow.connection, window_days(window, now), limit)
    return Popular(window=window, source="database", items=ranked(stored, limit))

"""Product views and popularity: models and rules. No web, database or Redis imports."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

_DAY_SECONDS = 86_400


class Window(StrEnum):
    HOURS_24 = "24h"
    DAYS_7 = "7d"

    @property
    def days(self) -> int:
        return 1 if self is Window.HOURS_24 else 7


class PopularProduct(BaseModel):
    model_config = ConfigDict(frozen=True)

    product_id: UUID
    views: int


class Popular(BaseModel):
    window: Window
    # Where the counts came from: Redis (live), or PostgreSQL when Redis is
    # empty or down (counts as of the last flush, a minute behind at most).
    source: Literal["redis", "database"]
    items: list[PopularProduct]


def window_days(window: Window, now: datetime) -> list[tuple[date, float]]:
    """The UTC days covering the window that ends ``now``, with their weights.

    Views are kept per day, so a sliding window is estimated the way a sliding
    window counter does (the rate limiter's too): every day wholly inside
    counts fully, and the oldest day, partly inside, counts by the fraction of
    it that is -- assuming its views were spread evenly over it.
    """
    now = now.astimezone(UTC)
    today = now.date()
    elapsed = (now - datetime.combine(today, time.min, tzinfo=UTC)).total_seconds()
    days = [(today - timedelta(days=back), 1.0) for back in range(window.days)]
    oldest_share = 1.0 - elapsed / _DAY_SECONDS
    if oldest_share > 0:
        days.append((today - timedelta(days=window.days), oldest_share))
    return days


def ranked(scores: list[tuple[UUID, float]], limit: int) -> list[PopularProduct]:
    """Most viewed first; ties by product id, so the order is stable."""
    ordered = sorted(scores, key=lambda pair: (-pair[1], str(pair[0])))
    return [
        PopularProduct(product_id=product_id, views=round(score))
        for product_id, score in ordered[:limit]
        if round(score) > 0
    ]

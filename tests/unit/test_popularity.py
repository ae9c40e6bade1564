"""Popularity windows: UTC days, the oldest weighted by how much of it is inside."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from uuid import UUID

from storefront.analytics.domain import Window, ranked, window_days


def test_24h_at_six_counts_today_and_three_quarters_of_yesterday() -> None:
    now = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)

    assert window_days(Window.HOURS_24, now) == [(date(2026, 3, 10), 1.0), (date(2026, 3, 9), 0.75)]


def test_7d_counts_seven_whole_days_and_part_of_the_eighth() -> None:
    now = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)

    days = window_days(Window.DAYS_7, now)

    assert [day for day, _ in days] == [date(2026, 3, 10) - timedelta(days=n) for n in range(8)]
    assert [weight for _, weight in days] == [1.0] * 7 + [0.25]


def test_days_are_utc_whatever_the_caller_s_zone() -> None:
    late_in_new_york = datetime(2026, 3, 9, 22, 0, tzinfo=timezone(timedelta(hours=-4)))

    assert window_days(Window.HOURS_24, late_in_new_york)[0] == (date(2026, 3, 10), 1.0)


def test_at_midnight_the_oldest_day_is_wholly_inside() -> None:
    days = window_days(Window.HOURS_24, datetime(2026, 3, 10, tzinfo=UTC))

    assert days == [(date(2026, 3, 10), 1.0), (date(2026, 3, 9), 1.0)]


def test_ranking_is_by_views_then_id_and_drops_what_rounds_to_nothing() -> None:
    a, b, c = (UUID(int=n) for n in (1, 2, 3))

    assert [(p.product_id, p.views) for p in ranked([(c, 2.4), (a, 5.0), (b, 2.4)], 5)] == [
        (a, 5),
        (b, 2),
        (c, 2),
    ]
    assert ranked([(a, 0.3)], 5) == []

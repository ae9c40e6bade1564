"""Product-view persistence on one connection (the unit of work's transaction)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from itertools import islice
from uuid import UUID

from sqlalchemy import Float, Interval, case, cast, delete, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.analytics.tables import product_views_daily, view_flush_batches

__all__ = ["apply_batch", "forget_old_batches", "top"]

# Rows per INSERT: well under PostgreSQL's 32,767 bind parameters (3 per row).
_UPSERT_ROWS = 1_000


async def apply_batch(
    connection: AsyncConnection, batch_id: UUID, counts: Mapping[tuple[date, UUID], int]
) -> bool:
    """Add a batch's counts to the daily table, once: False when it was applied before.

    The batch row is inserted first, in the same transaction as the counts. A
    concurrent flush applying the same batch waits on that row's unique index
    and, once this one commits, finds it and adds nothing.
    """
    claimed = await connection.execute(
        insert(view_flush_batches)
        .values(batch_id=batch_id, views=sum(counts.values()))
        .on_conflict_do_nothing()
        .returning(view_flush_batches.c.batch_id)
    )
    if claimed.first() is None:
        return False
    rows = iter(counts.items())
    while chunk := list(islice(rows, _UPSERT_ROWS)):
        statement = insert(product_views_daily).values(
            [
                {"day": day, "product_id": product_id, "views": views}
                for (day, product_id), views in chunk
            ]
        )
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=[product_views_daily.c.day, product_views_daily.c.product_id],
                set_={
                    "views": product_views_daily.c.views + statement.excluded.views,
                    "updated_at": func.now(),
                },
            )
        )
    return True


async def forget_old_batches(connection: AsyncConnection, days: int) -> int:
    age = cast(literal(timedelta(days=days)), Interval)
    result = await connection.execute(
        delete(view_flush_batches).where(view_flush_batches.c.flushed_at < func.now() - age)
    )
    return int(result.rowcount)


async def top(
    connection: AsyncConnection, days: Sequence[tuple[date, float]], limit: int
) -> list[tuple[UUID, float]]:
    """The best-scored products over the weighted ``days``, from the daily table."""
    weight = case(
        {day: literal(share, Float) for day, share in days}, value=product_views_daily.c.day
    )
    score = func.sum(cast(product_views_daily.c.views, Float) * weight)
    rows = await connection.execute(
        select(product_views_daily.c.product_id, score.label("score"))
        .where(product_views_daily.c.day.in_([day for day, _ in days]))
        .group_by(product_views_daily.c.product_id)
        .order_by(score.desc(), product_views_daily.c.product_id)
        .limit(limit)
    )
    return [(row.product_id, float(row.score)) for row in rows]
